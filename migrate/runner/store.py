"""A run directory on disk: `state.json` (replaced atomically), `journal.jsonl` (append-only), the lock.

Directory 0700, files 0600. Nothing secret is ever written here: values pass through the redactor.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migrate import log
from migrate.errors import LockHeld


def now_iso() -> str:
    return iso_of(datetime.now(UTC).timestamp())


def iso_of(wall: float) -> str:
    """An epoch time as the state, journal and reports write it: UTC, milliseconds, Z."""
    return datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wall_of(iso: str | None) -> float | None:
    """iso_of's inverse (None stays None)."""
    return datetime.fromisoformat(iso).timestamp() if iso else None


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_atomic(path: Path, text: str, mode: int = 0o600, *, durable: bool = True) -> None:
    """Write to a temp file in the same directory, fsync, rename over `path`, fsync the directory.

    `durable=False` skips both fsyncs: the file is still replaced whole (a killed process leaves the old
    version or the new one), but a power loss may bring back the old one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, text.encode())
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Store:
    """The files of one run directory (`<state_dir>/<name>/`, or a sandbox directory)."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.state_path = self.dir / "state.json"
        self.journal_path = self.dir / "journal.jsonl"
        self.lock_path = self.dir / "run.lock"
        self._lock_fd: int | None = None

    # -- state ---------------------------------------------------------------------------------
    def load_state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"runs": {}, "data": {}}

    def save_state(self, state: dict[str, Any], *, durable: bool = True) -> None:
        ensure_private_dir(self.dir)
        state["updated_at"] = now_iso()
        # One line, sorted: the C encoder (an indented dump takes Python's, ~5x the CPU, and a switch saves
        # while the application waits); `jq . state.json` reads it indented.
        write_atomic(self.state_path, json.dumps(log.redact_value("state", state), sort_keys=True), durable=durable)

    # -- journal -------------------------------------------------------------------------------
    def journal(self, event: str, *, durable: bool = True, **fields: Any) -> dict[str, Any]:
        """Append one event. `durable=False` skips the fsync (a process crash still keeps the line; only a
        power loss could cut it): for the frequent events of a step, whose outcome state.json holds."""
        ensure_private_dir(self.dir)
        entry = {"ts": now_iso(), "event": event, **{k: log.redact_value(k, v) for k, v in fields.items()}}
        fd = os.open(self.journal_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=False) + "\n").encode())
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def read_journal(self) -> list[dict[str, Any]]:
        try:
            lines = self.journal_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash mid-write
                continue
        return entries

    # -- lock ----------------------------------------------------------------------------------
    def acquire(self, command: str) -> None:
        """Take the run lock or refuse naming its holder. The kernel drops it if this process dies."""
        ensure_private_dir(self.dir)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self.lock_holder() or {}
            raise LockHeld(
                f"another run holds the lock on {self.dir}: pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, `{holder.get('command', '?')}`, since {holder.get('since', '?')}",
                hint="wait for it to finish (migrate status shows its progress); if that process is gone, "
                     "the lock frees itself") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                                 "since": now_iso()}).encode())
        os.fsync(fd)
        self._lock_fd = fd

    @property
    def holds_lock(self) -> bool:
        return self._lock_fd is not None

    @contextlib.contextmanager
    def locked(self, command: str | None = None) -> Iterator[Store]:
        """Hold the run lock for a block (a command that decides, then runs a workflow, under one lock)."""
        if self.holds_lock:
            yield self
            return
        self.acquire(command or command_line())
        try:
            yield self
        finally:
            self.release()

    def holder_alive(self) -> bool | None:
        """Whether a live process holds the lock now: None when nobody does (a dead holder frees it)."""
        if self.holds_lock:
            return True
        try:
            fd = os.open(self.lock_path, os.O_RDWR)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def lock_holder(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.lock_path.read_text() or "null")
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def release(self) -> None:
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None


def command_line() -> str:
    """This process's command, for the lock holder record (arguments never carry secrets)."""
    return " ".join(["migrate", *sys.argv[1:]])[:300]

