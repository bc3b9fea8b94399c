"""Small helpers the tests share."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Generic, TypeVar

from migrate.adapters.db import Endpoint, Session, connect

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def run_migrate(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real `migrate` command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT)


def spawn_migrate(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """The real `migrate` command in the background (a test kills it), its output discarded."""
    return subprocess.Popen([sys.executable, "-m", "migrate", *args], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def endpoint_as(server_port: int, user: str, password: str, label: str = "server") -> Endpoint:
    from pydantic import SecretStr

    return Endpoint("127.0.0.1", server_port, user, SecretStr(password), label=label)


def open_session(ep: Endpoint) -> Session:
    return connect(ep, attempts=1)


def fingerprint(session: Session, schema: str, table: str, key: str, upto: int | None) -> tuple[int, int]:
    """(rows, checksum) of `table` up to `key <= upto`: comparable between source and target."""
    cols = [r["c"] for r in session.run(
        "SELECT column_name AS c FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position", (schema, table))]
    expr = "CONCAT_WS('#', " + ", ".join(f"COALESCE(`{c}`, 'NULL')" for c in cols) + ")"
    where = f"WHERE `{key}` <= {int(upto)}" if upto is not None else ""
    row = session.one(f"SELECT COUNT(*) AS n, COALESCE(SUM(CRC32({expr})), 0) AS crc FROM `{schema}`.`{table}` {where}")
    return int(row["n"]), int(row["crc"])


def write_playbook(source: Path, dest: Path, /, **changes) -> Path:
    """A copy of the playbook at `source` with nested keys changed: write_playbook(a, b, cutover={"timeout_s": 2})."""
    import yaml

    data = yaml.safe_load(source.read_text())

    def merge(into: dict, new: dict) -> None:
        for k, v in new.items():
            if isinstance(v, dict) and isinstance(into.get(k), dict):
                merge(into[k], v)
            else:
                into[k] = v

    merge(data, changes)
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


class Reusable(Generic[T]):
    """Something costly a module's tests share (a sandbox of its own), made by `make` when a test first asks
    for it. A test that breaks it calls `used_up()` afterwards and the next test to ask gets a new one, so
    the module's tests pass in any order while the usual order makes it once."""

    def __init__(self, make: Callable[[], AbstractContextManager[T]]) -> None:
        self._make = make
        self._stack: contextlib.ExitStack | None = None
        self._value: T | None = None

    def get(self) -> T:
        if self._stack is None:
            with contextlib.ExitStack() as stack:
                self._value = stack.enter_context(self._make())
                self._stack = stack.pop_all()
        return self._value  # type: ignore[return-value]

    def used_up(self) -> None:
        stack, self._stack, self._value = self._stack, None, None
        if stack is not None:
            stack.close()
