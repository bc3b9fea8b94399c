"""What every write blocker does: stop the application's writes on the old primary so that no write lands there
after the final position is taken, say whether they are stopped (a crashed step's `done()`), undo it (rollback
before the point of no return), and make a server the new primary at promotion.

A blocker is picked per server (`write_block.for_server`): the playbook's method, as that server allows it.
Every method ends the same way: kill the application's sessions and wait until they have left the process list
(KILL returns before the session is gone), so a session that was blocked mid-transaction cannot commit later.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

from migrate.adapters.db import DatabaseError, Session
from migrate.capabilities.switch import Server
from migrate.errors import StepFailed
from migrate.runner import RunContext


class WriteBlocker(ABC):
    method: ClassVar[str]

    def __init__(self, server: Server, users: list[str], timeout_s: float):
        self.server, self.users, self.timeout_s = server, users, timeout_s

    @abstractmethod
    def describe(self) -> str:
        """What `block` would do, in one sentence, without doing it (for --dry-run)."""

    @abstractmethod
    def check(self, s: Session) -> str:
        """Read-only: would `block` be allowed on this server, with this account? One sentence; raise Refused."""

    @abstractmethod
    def block(self, s: Session, ctx: RunContext) -> str:
        """Block the writes: what is needed to undo it goes into ctx.facts, saved durably before anything changes;
        `ctx.facts["block_timing"]` says how long each part took. Returns one sentence."""

    @abstractmethod
    def is_blocked(self, s: Session, facts: dict) -> bool:
        """Whether this attempt's block holds now (asked on the server), and no application session is left."""

    @abstractmethod
    def release(self, s: Session, ctx: RunContext) -> str | None:
        """Undo this attempt's block on this server (the application may write there again); None: nothing to do."""

    def hand_over(self, new: Session, new_server: Server, facts: dict) -> str:
        """What the new primary needs from this block at promotion (nothing, unless the block took something that
        also reached the new primary)."""
        return ""

    # -- this server as the new primary -------------------------------------------------------------
    def make_writable(self, s: Session, ctx: RunContext) -> str:
        """At promotion: the application may write here. Off RDS: read_only OFF."""
        return "" if self.server.rds else set_read_only(s, False)

    def make_read_only(self, s: Session, ctx: RunContext) -> str:
        """A promotion undone: read-only again (off RDS)."""
        return "" if self.server.rds else set_read_only(s, True)

    def is_writable(self, s: Session) -> bool:
        return self.server.rds or not s.variable("read_only")


# Global privileges that let an account KILL other accounts' sessions (off RDS, where mysql.rds_kill serves the
# master user): SUPER, or CONNECTION ADMIN, which ALL PRIVILEGES includes.
KILL_PRIVILEGES = frozenset({"SUPER", "CONNECTION ADMIN", "ALL PRIVILEGES"})


def set_read_only(s: Session, on: bool) -> str:
    for stmt in s.dialect.set_read_only(on):
        s.run(stmt)
    return f"read_only {'ON' if on else 'OFF'}"


def sessions_of(s: Session, users: list[str], *, exclude: set[int] = frozenset()) -> list[int]:
    if not users:
        return []
    rows = s.run("SELECT id FROM information_schema.processlist WHERE user IN (" + ", ".join(["%s"] * len(users))
                 + ")", tuple(users))
    return [r["id"] for r in rows if r["id"] not in exclude and r["id"] != s.connection_id]


def _kill(s: Session, ids: list[int]) -> None:
    for connection_id in ids:
        try:
            s.run(s.dialect.kill(connection_id))
        except DatabaseError as exc:
            if exc.code not in (1094,):  # 1094: unknown thread id: it ended by itself
                raise


def kill_and_wait(s: Session, users: list[str], timeout_s: float) -> int:
    """Kill every session of `users`, then wait until they are gone: KILL returns before the session is.
    (Killing from several sessions at once was measured slower under load: the extra connects cost more.)"""
    ids = sessions_of(s, users)
    _kill(s, ids)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = set(sessions_of(s, users)) & set(ids)
        if not left:
            return len(ids)
        time.sleep(0.002)  # the application waits for this: poll often, it is one cheap query
    raise StepFailed(f"{len(left)} killed application session(s) still in the process list after {timeout_s:g} s "
                     f"(ids {sorted(left)[:10]})", hint="a long rollback may be running; retry the cutover later")


def elapsed_ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 1)
