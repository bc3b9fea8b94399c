"""The application-side write probe: how `migrate` measures write downtime from the application's side.

A thread connects as an application account to the application's endpoint and inserts one
sequence-numbered row per tick into `_migrate.probe`, reconnecting after any failure. Downtime is the
longest interval between two *acknowledged* writes, measured on acknowledgement times and counted up
to its stop as well: a probe that only looks at gaps between successful writes, or that stops while
writes still fail, reports milliseconds for a lockout of seconds. The probe's own start-up (until its
first acknowledged write) is not downtime and is reported apart (`first_ack_after_ms`); a probe that
never wrote counts its whole run, and a run that resumes a switch whose writes an earlier run blocked
counts from that block (see `report.resumed_gap`).
`stop()` therefore keeps writing until writes have succeeded again for a while, and `verify()` checks
that every acknowledged write is on the new primary.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from migrate import log
from migrate.adapters.db import DatabaseError, Endpoint, Session, connect, quote_account
from migrate.errors import MigrateError
from migrate.runner.store import iso_of

PROBE_SCHEMA = "_migrate"
PROBE_TABLE = "probe"
INSERT = f"INSERT INTO {PROBE_SCHEMA}.{PROBE_TABLE} (run_id, seq, sent_at) VALUES (%s, %s, NOW(6))"
GAP_REPORTED_MS = 100.0  # gaps longer than this are listed
GAPS_KEPT = 10
ERROR_SAMPLES = 20
FAILURE_LOG_EVERY_S = 1.0
GATE_MAX_GAP_S = 1.0  # the gate wants no interval without an acknowledged write longer than this
# While writes fail, the probe tries again every FAST_RETRY_S rather than at its next tick (as a connection
# pool retries), for the first FAST_RETRY_FOR_S of the outage: the gap is then measured to within a few
# milliseconds of the first write the new primary accepts, not to the probe's next tick.
FAST_RETRY_S = 0.005
FAST_RETRY_FOR_S = 2.0
RECENT_ACKS = 100_000


def ensure_probe_table(session: Session) -> None:
    """Create the probe's schema and table (on the source, before the seed, so the target gets them too)."""
    session.run(f"CREATE DATABASE IF NOT EXISTS {PROBE_SCHEMA}")
    session.run(f"CREATE TABLE IF NOT EXISTS {PROBE_SCHEMA}.{PROBE_TABLE} (run_id CHAR(12) NOT NULL, "
                "seq INT UNSIGNED NOT NULL, sent_at DATETIME(6) NOT NULL, PRIMARY KEY (run_id, seq)) "
                "ENGINE=InnoDB")


def grant_probe(session: Session, account_user: str, account_host: str = "%") -> None:
    """Let the probe's (application) account write and read the probe table, and nothing more."""
    session.run(f"GRANT INSERT, SELECT ON {PROBE_SCHEMA}.* TO {quote_account(account_user, account_host)}")


@dataclass
class ProbeResult:
    """What the probe saw. `lost` is None until `Probe.verify` has looked at the new primary."""

    run_id: str
    rate: float
    started_at: str
    ended_at: str
    duration_s: float
    attempts: int
    acknowledged: int
    failed: int
    max_gap_ms: float
    max_gap_started_at: str
    max_gap_ended_at: str
    gaps_over_100ms: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    ended_acknowledging: bool
    first_ack_at: str | None = None
    first_ack_after_ms: float | None = None  # the probe's start-up: from its start to its first acknowledged write
    acknowledged_seqs: list[int] = field(default_factory=list, repr=False)
    lost: list[int] | None = None
    lost_count: int | None = None
    ack_walls: list[float] = field(default_factory=list, repr=False)  # when each write was acknowledged (epoch s)
    failure_walls: list[float] = field(default_factory=list, repr=False)  # when each attempt failed

    def as_dict(self) -> dict[str, Any]:
        """Counts and the first/last acknowledged seq, not the full list; at most 100 lost seqs."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("acknowledged_seqs", "ack_walls", "failure_walls")}
        seqs = self.acknowledged_seqs
        data["acknowledged_first_seq"] = seqs[0] if seqs else None
        data["acknowledged_last_seq"] = seqs[-1] if seqs else None
        if self.lost is not None:
            data["lost"] = self.lost[:100]
        return data


class Probe:
    """An application-like writer. `endpoint` is called at every (re)connect, so the probe follows a
    repoint the way a pool that re-resolves its DSN would."""

    def __init__(self, endpoint: Callable[[], Endpoint], *, rate: float, run_id: str,
                 connect_timeout: float = 1.0, query_timeout: float = 2.0):
        if rate <= 0:
            raise ValueError("probe rate must be > 0 writes per second")
        if not run_id or len(run_id) > 12:
            raise ValueError("probe run_id must be 1 to 12 characters (the column is CHAR(12))")
        self.endpoint = endpoint
        self.rate = rate
        self.run_id = run_id
        self.connect_timeout = connect_timeout
        self.query_timeout = query_timeout
        self._log = log.get(probe=run_id)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: Session | None = None
        self._last_failure_log = 0.0
        self._final: ProbeResult | None = None
        # Shared with readers; guarded by self._cond.
        self._start_mono = self._start_wall = 0.0
        self._attempts = self._failed = 0
        self._acked: list[int] = []
        self._ack_walls: list[float] = []  # for the report's timeline
        self._failure_walls: list[float] = []
        self._recent_acks: deque[float] = deque(maxlen=RECENT_ACKS)  # monotonic times, for the gate
        self._first_ack_wall: float | None = None
        self._last_ack_mono = self._last_ack_wall = 0.0
        self._ok_since: float | None = None  # monotonic time of the first ack of the current success streak
        self._failing_since: float | None = None  # monotonic time of the first failure of the current streak
        self._gaps: list[tuple[float, float, float]] = []  # (ms, from wall, to wall), largest first
        self._max_gap: tuple[float, float, float] | None = None
        self._errors: dict[tuple[str, int | None, str], dict[str, Any]] = {}

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("probe already started")
        self._log.info("write probe starting", rate=self.rate, endpoint=self.endpoint().describe())
        with self._cond:
            self._start_mono, self._start_wall = time.monotonic(), time.time()
            self._last_ack_mono, self._last_ack_wall = self._start_mono, self._start_wall
        self._thread = threading.Thread(target=self._loop, name=f"probe-{self.run_id}", daemon=True)
        self._thread.start()

    @property
    def started(self) -> bool:
        return self._thread is not None

    def stop(self, settle_s: float = 0.5, max_wait_s: float = 30.0) -> ProbeResult:
        """Keep writing until writes have succeeded for `settle_s` after this call (at most `max_wait_s`),
        so a lockout at the end of the window is measured rather than cut off; then stop."""
        if self._thread is None:
            raise RuntimeError("probe was never started")
        if self._final is not None:
            return self._final
        called = time.monotonic()

        def settled() -> bool:
            return (self._ok_since is not None
                    and self._last_ack_mono - max(self._ok_since, called) >= settle_s)

        with self._cond:
            ended_acknowledging = self._cond.wait_for(settled, timeout=max_wait_s)
        self._stop.set()
        self._thread.join(timeout=self.connect_timeout + self.query_timeout + 2.0)
        if self._thread.is_alive():
            self._log.warning("write probe thread did not stop in time; reporting what it saw so far")
        result = self._final = self._result(ended_acknowledging)
        self._log.info("write probe stopped", acknowledged=result.acknowledged, failed=result.failed,
                       max_gap_ms=result.max_gap_ms, ended_acknowledging=ended_acknowledging)
        return result

    def snapshot(self) -> dict[str, Any]:
        """Current counts, for progress display while the probe runs."""
        with self._cond:
            now = time.monotonic()
            return {"attempts": self._attempts, "acknowledged": len(self._acked), "failed": self._failed,
                    "max_gap_ms": round(max(self._max_gap[0] if self._max_gap else 0.0,
                                            (now - self._last_ack_mono) * 1000), 1),
                    "current_gap_ms": round((now - self._last_ack_mono) * 1000, 1)}

    def gate(self, window_s: float, max_gap_s: float | None = None) -> str | None:
        """None when the probe has acknowledged writes throughout the last `window_s` (no interval without an
        acknowledged write longer than `max_gap_s`); otherwise why not, in words."""
        max_gap_s = max_gap_s or max(GATE_MAX_GAP_S, 3.0 / self.rate)
        with self._cond:
            now = time.monotonic()
            if not self._acked:
                last = next(iter(sorted(self._errors.values(), key=lambda e: e.get("last_at", ""), reverse=True)),
                            None)
                said = f"; last error ({last['code']}) {last['message']}" if last else ""
                return (f"the probe has acknowledged no write through {self.endpoint().describe()} in the "
                        f"{now - self._start_mono:.1f} s since it started{said}")
            if now - self._start_mono < window_s:
                return f"the probe has run {now - self._start_mono:.1f} s, less than {window_s:g} s"
            since = now - window_s
            times = [since, *(t for t in self._recent_acks if t >= since), now]
            gap = max(b - a for a, b in zip(times, times[1:], strict=False))
        if gap > max_gap_s:
            return (f"the probe went {gap:.2f} s without an acknowledged write in the last {window_s:g} s "
                    f"(at most {max_gap_s:g} s allowed)")
        return None

    @classmethod
    def verify_on(cls, result: ProbeResult, server) -> ProbeResult:
        """`verify` on a `Server` (the one the application points at when the run ends); when it cannot be read,
        the result as it is: the report then says the writes were not checked."""
        try:
            with server.session() as s:
                return cls.verify(result, s)
        except MigrateError as exc:
            log.get().warning("acknowledged writes not checked", server=server.name, reason=exc.message)
            return result

    @staticmethod
    def verify(result: ProbeResult, new_primary: Session) -> ProbeResult:
        """Fill `lost`: acknowledged seqs missing on `new_primary` (which must have applied all it will get)."""
        rows = new_primary.run(f"SELECT seq FROM {PROBE_SCHEMA}.{PROBE_TABLE} WHERE run_id = %s",
                               (result.run_id,))
        present = {int(r["seq"]) for r in rows}
        lost = [s for s in result.acknowledged_seqs if s not in present]
        return dataclasses.replace(result, lost=lost, lost_count=len(lost))

    # -- the writer thread ---------------------------------------------------------------------
    def _loop(self) -> None:
        tick = 0
        try:
            while not self._stop.is_set():
                if not self._attempt() and time.monotonic() - self._failing_since < FAST_RETRY_FOR_S:
                    self._stop.wait(FAST_RETRY_S)
                    continue
                # Absolute schedule: tick n is due at start + n/rate; ticks missed by a slow write are
                # skipped, never bursted.
                elapsed = time.monotonic() - self._start_mono
                tick = max(tick + 1, math.ceil(elapsed * self.rate))
                self._stop.wait(max(0.0, self._start_mono + tick / self.rate - time.monotonic()))
        finally:
            if self._session is not None:
                self._session.close()
                self._session = None

    def _attempt(self) -> bool:
        with self._cond:
            self._attempts += 1
            seq = self._attempts  # one seq per attempt, never reused: a failed write may still have landed
        during = "connect"
        try:
            if self._session is None:
                self._session = self._connect()
                self._log.debug("write probe connected", endpoint=self._session.endpoint.describe())
            during = "insert"
            self._session.run(INSERT, (self.run_id, seq))
        except Exception as exc:  # noqa: BLE001 - the probe must outlive any failure; each one is recorded
            self._failure(during, exc)
            return False
        self._ack(seq, time.monotonic(), time.time())
        return True

    def _connect(self) -> Session:
        """Connect with the handshake bounded by `connect_timeout` too, then allow `query_timeout` per write.

        Behind a proxy the TCP connect succeeds at once even when the database is gone; bounding only
        the TCP connect would let a dead handshake hang for the query timeout and overstate the gap."""
        return connect(self.endpoint(), connect_timeout=self.connect_timeout, read_timeout=self.query_timeout,
                       attempts=1, bound_handshake=True)

    def _ack(self, seq: int, mono: float, wall: float) -> None:
        with self._cond:
            self._acked.append(seq)
            self._ack_walls.append(wall)
            self._recent_acks.append(mono)
            if self._first_ack_wall is None:  # start-up, not downtime
                self._first_ack_wall = wall
            else:
                self._note_gap(mono - self._last_ack_mono, self._last_ack_wall, wall)
            self._last_ack_mono, self._last_ack_wall = mono, wall
            if self._ok_since is None:
                self._ok_since = mono
            self._failing_since = None
            self._cond.notify_all()

    def _failure(self, during: str, exc: Exception) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        code = exc.code if isinstance(exc, DatabaseError) else None
        text = exc.message.split(" failed: ", 1)[-1] if isinstance(exc, DatabaseError) else repr(exc)
        text = log.redact(text)[:200]  # the statement (with its seq) is cut off: samples group by cause
        now = time.time()
        with self._cond:
            self._failed += 1
            self._failure_walls.append(now)
            self._ok_since = None
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            key = (during, code, text)
            if key not in self._errors and len(self._errors) >= ERROR_SAMPLES:
                key = ("other", None, "further distinct errors")
            sample = self._errors.setdefault(key, {"during": key[0], "code": key[1], "message": key[2],
                                                   "count": 0, "first_at": iso_of(now)})
            sample["count"] += 1
            sample["last_at"] = iso_of(now)
            self._cond.notify_all()
        if time.monotonic() - self._last_failure_log >= FAILURE_LOG_EVERY_S:
            self._last_failure_log = time.monotonic()
            self._log.info("write probe write failed", during=during, code=code)

    def _note_gap(self, seconds: float, from_wall: float, to_wall: float) -> None:
        """Record one interval without an acknowledged write (caller holds the lock)."""
        gap = (seconds * 1000.0, from_wall, to_wall)
        if self._max_gap is None or gap[0] > self._max_gap[0]:
            self._max_gap = gap
        if gap[0] > GAP_REPORTED_MS:
            self._gaps = sorted([*self._gaps, gap], reverse=True)[:GAPS_KEPT]

    def _result(self, ended_acknowledging: bool) -> ProbeResult:
        with self._cond:
            end_mono, end_wall = time.monotonic(), time.time()
            # The interval from the last acknowledged write to the stop counts too.
            self._note_gap(end_mono - self._last_ack_mono, self._last_ack_wall, end_wall)
            ms, gap_from, gap_to = self._max_gap or (0.0, self._start_wall, end_wall)
            return ProbeResult(
                run_id=self.run_id, rate=self.rate, started_at=iso_of(self._start_wall), ended_at=iso_of(end_wall),
                duration_s=round(end_mono - self._start_mono, 3), attempts=self._attempts,
                acknowledged=len(self._acked), failed=self._failed, max_gap_ms=round(ms, 1),
                max_gap_started_at=iso_of(gap_from), max_gap_ended_at=iso_of(gap_to),
                gaps_over_100ms=[{"ms": round(g, 1), "from": iso_of(f), "to": iso_of(t)} for g, f, t in self._gaps],
                errors=sorted(self._errors.values(), key=lambda e: -e["count"]),
                ended_acknowledging=ended_acknowledging,
                first_ack_at=iso_of(self._first_ack_wall) if self._first_ack_wall else None,
                first_ack_after_ms=round((self._first_ack_wall - self._start_wall) * 1000, 1)
                if self._first_ack_wall else None,
                acknowledged_seqs=list(self._acked), ack_walls=list(self._ack_walls),
                failure_walls=list(self._failure_walls))
