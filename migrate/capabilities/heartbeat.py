"""The heartbeat: lag read from a replicated timestamp, not from the server's own figure.

`Seconds_Behind_Master` reads 0 while the IO thread is behind or silently cut off, NULL once the SQL thread
stopped, and jumps on long transactions. So, as pt-heartbeat and gh-ost do, a writer puts one row in the tool's
schema on the primary every `interval_s`: the primary's server id and its own UTC clock, to the microsecond. The
replica gets the row through replication; how old the newest row it applied is, on the primary's clock, is how
far behind it is.

Precision: the replica applied the heartbeat written at `ts` and not the next one (written at `ts + interval`),
so it stopped applying somewhere in between: the lag is `now - ts - interval/2`, within +-interval/2 (plus the
clock readings' own error). When the replica has the primary's newest row, the lag is 0 (within the row's age).
When no writer runs (the newest row on the primary is older than two intervals), the heartbeat says nothing.

Clock skew: each server's clock is read against this machine's, its offset taken at the middle of the round
trip (error: half of it); the replica's offset minus the primary's is the skew, corrected for and shown.

A switch pauses the writers (`paused`): no heartbeat may reach the old primary after its final position is
taken. `migrate heartbeat` takes the pause lock shared for each write and skips the write while a switch holds
it; it also writes only in a settled phase, to the server the application writes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from migrate import log
from migrate.adapters.db import DatabaseError, Endpoint, Session, connect
from migrate.capabilities import inspector
from migrate.capabilities.inspector import TOOL_SCHEMA
from migrate.errors import MigrateError

TABLE = f"{TOOL_SCHEMA}.heartbeat"
CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (server_id INT UNSIGNED NOT NULL PRIMARY KEY, "
          "ts DATETIME(6) NOT NULL, interval_ms INT UNSIGNED NOT NULL, writer VARCHAR(64) NOT NULL) ENGINE=InnoDB")
# The server id is a literal (read once): under statement-based replication @@server_id would be the replica's.
WRITE = f"REPLACE INTO {TABLE} (server_id, ts, interval_ms, writer) VALUES (%s, UTC_TIMESTAMP(6), %s, %s)"
READ = f"SELECT ts, interval_ms, writer, UTC_TIMESTAMP(6) AS now FROM {TABLE} WHERE server_id = %s"
STALE_INTERVALS = 2  # a row older than this many intervals (plus STALE_SLACK_S) means no writer runs
STALE_SLACK_S = 0.5
PAUSE_FILE = "heartbeat.lock"
PAUSE_WAIT_S = 10.0  # a writer holds the lock for one write; its statement times out well before this
WRITE_TIMEOUT_S = 2.0


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def ensure_table(session: Session) -> None:
    """The heartbeat's table on the primary (replicated to the replica like any table), created only when absent:
    a CREATE ... IF NOT EXISTS is written to the binlog each time."""
    if not inspector.table_exists(session, TOOL_SCHEMA, "heartbeat"):
        session.run(f"CREATE DATABASE IF NOT EXISTS {TOOL_SCHEMA}")
        session.run(CREATE)


# -- clocks ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    offset_s: float  # the server's UTC clock minus this machine's
    error_s: float  # half the round trip of the reading


def read_clock(session: Session) -> Clock:
    before = time.time()
    server = _epoch(session.value("SELECT UTC_TIMESTAMP(6)"))
    after = time.time()
    return Clock(server - (before + after) / 2, (after - before) / 2)


# -- reading ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeartbeatLag:
    lag_s: float | None  # None: the heartbeat says nothing (`said` says why)
    error_s: float | None  # the lag is within +-error_s
    last_written_s_ago: float | None  # the newest row on the primary, on the primary's clock
    interval_s: float | None
    writer: str | None
    clock_skew_s: float  # the replica's clock minus the primary's
    clock_skew_error_s: float
    said: str

    @property
    def fresh(self) -> bool:
        return self.lag_s is not None

    @property
    def upper_s(self) -> float | None:
        """The most the replica can be behind: what a gate compares."""
        return None if self.lag_s is None else self.lag_s + (self.error_s or 0.0)

    def as_dict(self) -> dict:
        return {**asdict(self), "fresh": self.fresh}


def read_lag(primary: Session, replica: Session, primary_server_id: int) -> HeartbeatLag:
    p_clock, r_clock = read_clock(primary), read_clock(replica)
    skew, skew_error = r_clock.offset_s - p_clock.offset_s, p_clock.error_s + r_clock.error_s
    try:
        newest = primary.one(READ, (primary_server_id,))
        applied = replica.one(READ, (primary_server_id,))
    except DatabaseError as exc:
        if exc.code != 1146:  # no such table: the heartbeat was never set up
            raise
        return HeartbeatLag(None, None, None, None, None, skew, skew_error,
                            f"{TABLE} does not exist yet: run `migrate heartbeat`")
    return estimate(newest, applied, skew, skew_error)


def _age_and_interval(row: dict) -> tuple[float, float]:
    """How old a heartbeat row is on its server's clock (its `now` read with it), and its writer's interval."""
    return _epoch(row["now"]) - _epoch(row["ts"]), row["interval_ms"] / 1000


def _stale(age: float, interval: float) -> bool:
    return age > STALE_INTERVALS * interval + STALE_SLACK_S


def estimate(newest: dict | None, applied: dict | None, skew: float, skew_error: float) -> HeartbeatLag:
    """The lag from the primary's newest heartbeat row and the replica's (each read with its server's `now`), the
    replica's clock being `skew` ahead of the primary's."""
    if newest is None:
        return HeartbeatLag(None, None, None, None, None, skew, skew_error,
                            "no heartbeat has been written on the primary: run `migrate heartbeat`")
    age, interval = _age_and_interval(newest)
    seen = dict(last_written_s_ago=round(age, 3), interval_s=interval, writer=newest["writer"], clock_skew_s=skew,
                clock_skew_error_s=skew_error)
    if _stale(age, interval):
        return HeartbeatLag(None, None, **seen, said=f"the last heartbeat was written {age:.1f} s ago: no writer "
                                                     "runs (`migrate heartbeat`)")
    if applied is None:
        return HeartbeatLag(None, None, **seen, said="the replica has no heartbeat from this primary yet")
    if applied["ts"] == newest["ts"]:
        return HeartbeatLag(0.0, round(age + skew_error, 4), **seen, said="the replica has the newest heartbeat")
    on_primary_clock = _epoch(applied["now"]) - skew
    behind = max(0.0, on_primary_clock - _epoch(applied["ts"]) - interval / 2)
    return HeartbeatLag(round(behind, 4), round(interval / 2 + skew_error, 4), **seen,
                        said=f"the replica's newest heartbeat is {behind:.2f} s old")


def in_use(primary: Session) -> tuple[bool, str]:
    """Whether a heartbeat writer runs on `primary` now, and which one (for `plan`). Reads only."""
    if not inspector.table_exists(primary, TOOL_SCHEMA, "heartbeat"):
        return False, f"no heartbeat has been written yet ({TABLE} does not exist)"
    row = primary.one(READ, (int(primary.value("SELECT @@server_id")),))
    if row is None:
        return False, "this server has written no heartbeat yet"
    age, interval = _age_and_interval(row)
    if _stale(age, interval):
        return False, f"the last heartbeat (by `{row['writer']}`) was written {age:.0f} s ago: no writer runs now"
    return True, f"`{row['writer']}` writes it every {interval:g} s (the last {age:.1f} s ago)"


# -- the pause a switch holds ------------------------------------------------------------------------


@contextlib.contextmanager
def paused(run_dir: Path, wait_s: float = PAUSE_WAIT_S) -> Iterator[None]:
    """Held by a switch, exclusively, for its whole run: no `migrate heartbeat` writes meanwhile. Released when the
    process ends, however it ends (the writer then still waits for a settled phase)."""
    fd = os.open(run_dir / PAUSE_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MigrateError(f"a heartbeat writer held {run_dir / PAUSE_FILE} for {wait_s:g} s",
                                       hint="its server may hang: stop `migrate heartbeat`, then retry") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def _unless_paused(run_dir: Path) -> Iterator[bool]:
    """True (and the lock held shared) when no switch holds the pause."""
    fd = os.open(run_dir / PAUSE_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


# -- writing ---------------------------------------------------------------------------------------


class Writer:
    """Writes the heartbeat every `interval_s` on its own connection, in a thread, until stopped.

    `where()` says where to write now: an Endpoint, or a sentence saying why not now (a paused writer). With
    `run_dir`, each write also takes the pause lock shared and is skipped while a switch holds it."""

    def __init__(self, where: Callable[[], Endpoint | str], interval_s: float, name: str,
                 run_dir: Path | None = None, on_change: Callable[[str], None] | None = None):
        self.where, self.interval_s, self.name, self.run_dir = where, interval_s, name, run_dir
        self.on_change = on_change or (lambda said: log.get().info("heartbeat", said=said))
        self.written = self.failed = 0
        self.state = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: Session | None = None
        self._server_id: int | None = None
        self._endpoint: Endpoint | None = None

    def start(self) -> Writer:
        self._thread = threading.Thread(target=self.run, name=f"heartbeat-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(WRITE_TIMEOUT_S * 3)
        self._close()

    def __enter__(self) -> Writer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self) -> None:
        """The loop (in the calling thread: `migrate heartbeat` runs it in the foreground until stopped)."""
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._tick()
            next_at += self.interval_s
            delay = next_at - time.monotonic()
            if delay < 0:  # a slow write: no burst to catch up
                next_at, delay = time.monotonic(), 0.0
            self._stop.wait(delay)
        self._close()

    def _tick(self) -> None:
        try:
            where = self.where()
        except MigrateError as exc:
            where = f"cannot tell where to write: {exc.message}"
        if isinstance(where, str):
            self._say(f"paused: {where}")
            self._close()
            return
        lock = _unless_paused(self.run_dir) if self.run_dir else contextlib.nullcontext(True)
        with lock as free:
            if not free:
                self._say("paused: a switch is running")
                return
            try:
                self._write(where)
            except DatabaseError as exc:
                self.failed += 1
                self._say(f"failing on {where.label}: {exc}")
                self._close()
                return
        self.written += 1
        self._say(f"writing on {where.label} every {self.interval_s:g} s")

    def _write(self, endpoint: Endpoint) -> None:
        if self._session is None or self._endpoint != endpoint:
            self._close()
            self._session = connect(endpoint, attempts=1, connect_timeout=WRITE_TIMEOUT_S,
                                    read_timeout=WRITE_TIMEOUT_S)
            self._endpoint = endpoint
            self._server_id = int(self._session.value("SELECT @@server_id"))
            ensure_table(self._session)
        self._session.run(WRITE, (self._server_id, int(self.interval_s * 1000), self.name[:64]))

    def _say(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.on_change(state)

    def _close(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.close()
        self._session = self._endpoint = None
