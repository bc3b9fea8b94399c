"""What both seeders share: their result, their error, progress polling and leftover cleanup."""

from __future__ import annotations

import contextlib
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from migrate.adapters.dialect import BinlogPosition
from migrate.adapters.executor import Executor
from migrate.errors import MigrateError

Progress = Callable[..., None]  # (what, done, total, unit)
POLL_S = 1.0


class SeedError(MigrateError):
    pass


@dataclass(frozen=True)
class SeedResult:
    tool: str
    position: BinlogPosition
    seconds: float
    dump_bytes: int
    consistency: str

    def as_dict(self) -> dict:
        return {"tool": self.tool, "file": self.position.file, "pos": self.position.pos,
                "gtid": self.position.gtid_set, "seconds": round(self.seconds, 2), "dump_bytes": self.dump_bytes,
                "consistency": self.consistency}


class Every:
    """Calls `fn` every POLL_S seconds in a thread until the block ends (progress of a running command)."""

    def __init__(self, fn: Callable[[], None]):
        self.fn, self.stop = fn, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.wait(POLL_S):
            with contextlib.suppress(Exception):  # progress is best effort; the work itself reports errors
                self.fn()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def stop_leftovers(host: Executor, workdir: str, timeout_s: float = 30) -> int:
    """Stop dump/load processes an interrupted run left on the host (they name the workdir): a new seed
    must not race an old load into the same tables. The bracket keeps pkill from matching its own shell."""
    head, _, tail = workdir.rstrip("/").rpartition("/")
    pattern = shlex.quote(f"{head}/[{tail[0]}]{tail[1:]}/")
    found = host.run(f"pgrep -c -f {pattern}", timeout=30, check=False).text.strip()
    if found in ("", "0"):
        return 0
    host.run(f"pkill -TERM -f {pattern}", timeout=30, check=False)
    deadline = time.monotonic() + timeout_s
    while host.run(f"pgrep -f {pattern}", timeout=30, check=False).ok:
        if time.monotonic() > deadline:
            host.run(f"pkill -KILL -f {pattern}", timeout=30, check=False)
            break
        time.sleep(0.2)
    return int(found)
