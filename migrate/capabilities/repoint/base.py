"""What every repointer does: point the application at a host:port, say where it points, check it can.

Repointing is the cutover's point of no return, so each repointer reads the real thing back
(`current`, `points_to`) instead of trusting that its command worked, and `check` (for `migrate
plan`) only reads.
"""

from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from typing import ClassVar

from migrate.errors import MigrateError, Refused


class RepointFailed(MigrateError):
    """Pointing the application failed; before the point of no return the cutover rolls back."""


class RepointCheckFailed(Refused):
    """The repointer cannot work as configured (found by `check`; nothing was changed)."""


class Caution(str):
    """What `check` returns when the repointer can work but the operator should know something first:
    `migrate plan` shows it as a warning instead of a pass."""


class Repointer(ABC):
    method: ClassVar[str]

    @abstractmethod
    def describe(self, host: str, port: int) -> str:
        """What `point_to(host, port)` would do, in one sentence, without doing it (for --dry-run)."""

    @abstractmethod
    def current(self) -> tuple[str, int] | None:
        """Where the application is pointed now, read from the real thing; None when unknowable."""

    @abstractmethod
    def point_to(self, host: str, port: int) -> str:
        """Point the application at host:port; return one sentence saying what was done."""

    def points_to(self, host: str, port: int) -> bool | None:
        """Whether the application is pointed at host:port now; None when unknowable."""
        now = self.current()
        return None if now is None else now == (host, port)

    def carries(self, endpoint) -> bool | None:
        """Whether a connection to `endpoint` (an Endpoint) goes through what `point_to` moves; None when
        unknowable (a command cannot be read back)."""
        return None

    def snapshot(self, host: str, port: int) -> dict | None:
        """What `point_to(host, port)` is about to replace, as a record `restore` can put back exactly (the
        Repoint step keeps it in the run's state before pointing: no secret, no file content in it). None: pointing
        back at the old address undoes the repoint."""
        return None

    def restore(self, saved: dict) -> str:
        """Put back exactly what `snapshot` recorded; return one sentence saying what was done."""
        raise NotImplementedError(f"{self.method} takes no snapshot")

    def prepare(self, host: str, port: int) -> None:  # noqa: B027 - most repointers have nothing to prepare
        """Before writes are blocked (the cutover's gates), for a later `point_to(host, port)`: whatever makes it
        faster or fail early (a connection opened, a rendered file validated); raise RepointFailed to refuse."""

    @abstractmethod
    def check(self) -> str:
        """Read-only: can `point_to` work? One sentence if so; raise RepointCheckFailed otherwise."""


def program_of(command: str, key: str) -> str | None:
    """The program a shell command line starts: its first word after any NAME=value assignments (None when it has
    none). `key` names the playbook key the command comes from, for the error."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise RepointCheckFailed(f"cannot parse {key} `{command}`: {exc}", hint=f"fix the quoting of {key}") from None
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        words.pop(0)
    return words[0] if words else None
