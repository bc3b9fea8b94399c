"""Comparing one chunk of the primary (the source) with the replica (the target) at a consistent point.

The replica applies the primary's changes continuously and can be paused by nothing verify does, so its side
of a chunk can never be read at exactly the position the primary's side was read at. The comparison is built
so that this does not matter:

1. **First pass, without locks.** On the primary, in one `START TRANSACTION WITH CONSISTENT SNAPSHOT`: the
   snapshot's binary-log position P (MariaDB gives it exactly: binlog_snapshot_file/_position; MySQL's
   position read just after is at or past it), the chunk's last key, the chunk's checksum. On the replica, at
   the same time: wait until it has applied P, then the chunk's checksum, at some Q >= P.

   *Equal is sound.* Take a row that differs on the replica at P, i.e. one that the replica, having applied
   exactly what the primary had at P, holds otherwise (or lacks, or has extra). If no transaction of the
   primary writes it between P and Q, replication writes nothing to it either, so at Q the replica still
   holds it as at P, and it differs from the primary's snapshot at P: the checksums differ. A difference is
   therefore missed only in a row the primary rewrites while the chunk is being compared, and replication
   then writes that row on the replica from the primary's row image: the difference does not outlive the
   write (ROW format, full row image: RDS's default; with a minimal image, columns the write does not carry
   keep their difference and are seen by the next pass). So: a difference present when the chunk is read, in
   a row nobody is writing at that moment, is always seen; equal checksums prove the chunk had none.

   *Different is not yet a verdict.* Rows written between P and Q legitimately differ: a busy row would be a
   false alarm.

2. **Re-checks.** A chunk that differs is read again the same way up to `rechecks` times after a short pause;
   equal once is equal (the argument above holds for every pass).

3. **Which rows.** If it still differs, one more pass reads each row's key and hash on both sides: the rows
   that differ in it are the candidates (the others just agreed, which clears them by the same argument).

4. **Exact confirmation, with locks.** Each candidate row is read on the primary with a locking read that
   takes shared locks (`LOCK IN SHARE MODE NOWAIT` / `FOR SHARE NOWAIT`, REPEATABLE READ, so the gap where an
   absent key would go is locked too), then the primary's binary-log position P' is read: every transaction
   that wrote those rows committed before the locks were granted, and InnoDB commits after the binary log is
   written, so P' is at or past all of them; the replica waits until it has applied P', and reads the same
   rows. While the locks are held no transaction can write those rows on the primary, so nothing between P'
   and the replica's read changes them: the two reads are of the same data, and a row that still differs
   really differs. This is the only verdict of "different", so a busy row is never a false alarm.

   The locks are shared (the application still reads the rows), held on a few rows (the candidates, in
   batches of at most `CONFIRM_BATCH`), for at most the time the replica takes to apply P' (bounded by
   `LOCK_HOLD_S`, after which they are released and the batch tried again later) plus one read of those rows
   on the replica. NOWAIT means verify never waits for a lock: it cannot be part of a deadlock, so no
   application transaction is ever chosen as a deadlock victim because of it (MySQL 5.7 has no NOWAIT: there
   it waits at most innodb_lock_wait_timeout, 1 s). A batch whose locks stay busy is tried `CONFIRM_TRIES`
   times and then reported as *unverified*, never as equal. Positions are binary-log file and offset, not
   GTID sets: a transaction is in the binary log before its InnoDB commit makes it visible and releases its
   locks, while MySQL adds its GTID to gtid_executed only as it commits.

Why not pause the replica instead (STOP SLAVE SQL_THREAD, or START SLAVE UNTIL the primary's position, read,
START SLAVE), which would make every pass exact? Because a verify killed between the stop and the start leaves
replication stopped on the server that is about to become the primary (the cutover's gates would then refuse,
and the lag grows until a human notices), because it adds a stop and a restart of the applier and the chunk's
read to the replica's lag for every chunk, and because after a cutover the replica is the RDS instance, whose
replication only `mysql.rds_stop_replication` stops. The shared locks of step 4 are taken only for rows that
already differed four times, on a few rows, for about the replica's lag, and the server releases them by
itself when verify's connection goes, whatever happens to verify.

Nothing here writes to either server, changes a variable beyond the session's own, or stops replication:
the master user of an RDS instance can run all of it (SELECT, SHOW MASTER STATUS, locking reads).
A table without a usable key follows the same passes with the whole table as its one chunk (its confirmation
locks the whole table for that moment).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from migrate import log
from migrate.adapters.db import DatabaseError, Session, Statement
from migrate.adapters.dialect import BinlogPosition, Dialect
from migrate.capabilities import inspector, replication
from migrate.capabilities.verify import checksum
from migrate.capabilities.verify.chunks import Key, Range, Sizer, key_of, next_boundary
from migrate.capabilities.verify.inventory import Table
from migrate.capabilities.verify.throttle import Throttle

RECHECKS = 3
RECHECK_PAUSE_S = 0.2
CONFIRM_BATCH = 200
CONFIRM_TRIES = 5
LOCK_HOLD_S = 1.0
STATEMENT_LIMIT_S = 120.0
KEYS_KEPT = 100  # differing keys named per chunk (the count is always whole)


@dataclass(frozen=True)
class RowDifference:
    key: Key | None
    kind: str  # changed | missing_on_replica | extra_on_replica | rows_differ (a table compared whole)


@dataclass
class ChunkResult:
    table: str
    after: Key | None
    through: Key | None
    rows: int  # the primary's rows in the chunk at its first pass
    seconds: float  # the slower side's checksum query in the first pass
    waited_s: float = 0.0  # how long the replica took to reach the first pass's position
    reads: int = 1  # passes over the chunk, re-checks and confirmation included
    how: str = "checksums equal"
    differences: list[RowDifference] = field(default_factory=list)
    differing_rows: int = 0
    unverified: list[Key] = field(default_factory=list)
    first_key: Key | None = None  # the smallest and largest key of the chunk on either server (when it differs)
    last_key: Key | None = None

    @property
    def equal(self) -> bool:
        return not self.differing_rows and not self.unverified


@dataclass
class _Pair:
    primary: list[dict[str, Any]]
    replica: list[dict[str, Any]]
    primary_s: float
    replica_s: float
    waited_s: float


class Comparer:
    """Compares chunks of `primary` and `replica` (sessions of their own, set up for it by `prepare`). `ahead`, a
    second session on the primary, finds where the next chunk ends while this one is compared: the key range is
    all both sides need to agree on, so it may come from outside the chunk's snapshot."""

    def __init__(self, primary: Session, replica: Session, throttle: Throttle, *, ahead: Session | None = None,
                 rechecks: int = RECHECKS):
        self.primary, self.replica, self.throttle = primary, replica, throttle
        self.ahead = ahead or primary
        self.rechecks = rechecks
        self.d: Dialect = primary.dialect
        self.rd: Dialect = replica.dialect
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="verify-replica")  # the replica's side, beside
        self._bounds = ThreadPoolExecutor(1, thread_name_prefix="verify-bounds")  # the next chunk's end, ahead

    @staticmethod
    def prepare(s: Session) -> None:
        for stmt in checksum.session_settings(s.dialect, STATEMENT_LIMIT_S):
            s.run(stmt)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._bounds.shutdown(wait=False, cancel_futures=True)

    # -- a table, chunk by chunk -----------------------------------------------------------------------------

    def chunks(self, table: Table, after: Key | None, sizer: Sizer) -> Iterator[ChunkResult]:
        """Every chunk of `table` after `after`, compared, in key order; the last one is open above. The chunk
        size learns from each; the end of the next chunk is looked up while the current one is compared."""
        if not table.key:
            yield self._compare(table, None, None, sizer)
            return
        ahead = self._bounds.submit if self.ahead is not self.primary else _now
        pending = ahead(self._boundary, table, after, sizer.rows)
        while True:
            through = pending.result()
            if through is not None:
                pending = ahead(self._boundary, table, through, sizer.rows)
            try:
                result = self._compare(table, after, through, sizer)
            except DatabaseError as exc:
                if exc.code not in Dialect.STATEMENT_TIMEOUT_ERRORS or sizer.rows <= sizer.least:
                    raise
                log.get().warning("a chunk query ran into its time limit; smaller chunks", table=table.full_name,
                                  rows=sizer.too_slow())
                if through is not None:
                    pending.result()  # the session is free again
                pending = _now(self._boundary, table, after, sizer.rows)
                continue
            yield result
            if through is None:
                return
            after = through

    def _boundary(self, table: Table, after: Key | None, rows: int) -> Key | None:
        row = self.ahead.one(next_boundary(table, after, rows))
        return key_of(row, table) if row else None

    # -- one chunk -------------------------------------------------------------------------------------------

    def _compare(self, table: Table, after: Key | None, through: Key | None, sizer: Sizer) -> ChunkResult:
        pair = self._pair(table, after, through, query=checksum.chunk_checksum if table.key else _whole)
        p, r = pair.primary[0], pair.replica[0]
        result = ChunkResult(table.full_name, after, through, int(p["n"]), max(pair.primary_s, pair.replica_s),
                             waited_s=pair.waited_s)
        if table.key:
            sizer.measured(result.rows, result.seconds)
        if _same(p, r):
            return result
        return self._settle(table, result, first=(p, r))

    def _settle(self, table: Table, result: ChunkResult, first: tuple[dict, dict]) -> ChunkResult:
        """The first pass differed: re-check, find the rows, confirm them exactly."""
        rng = Range(result.after, result.through)
        query = checksum.chunk_checksum if table.key else _whole
        for n in range(1, self.rechecks + 1):
            time.sleep(RECHECK_PAUSE_S * n)
            pair = self._pair(table, result.after, rng.through, query=query)
            result.reads += 1
            if _same(pair.primary[0], pair.replica[0]):
                result.how = f"equal on re-check {n} (rows written while the first pass read them)"
                return result
        if not table.key:
            return self._confirm_whole(table, result)
        pair = self._pair(table, result.after, rng.through, query=checksum.row_hashes)
        result.reads += 1
        ours = {key_of(row, table): row["crc"] for row in pair.primary}
        theirs = {key_of(row, table): row["crc"] for row in pair.replica}
        candidates = sorted((k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)), key=_order)
        if not candidates:
            result.how = "rows equal on re-reading them one by one"
            return result
        every = sorted(ours.keys() | theirs.keys(), key=_order)
        result.first_key, result.last_key = every[0], every[-1]
        return self._confirm(table, result, candidates)

    # -- the passes ------------------------------------------------------------------------------------------

    def _pair(self, table: Table, after: Key | None, through: Key | None, *, query) -> _Pair:
        """One pass over the chunk (`after`, `through`]: the primary's side in a consistent snapshot, the replica's
        once it has applied the snapshot's position, both at once."""
        p = self.primary
        rng = Range(after, through) if table.key else Range()
        p.run("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            position = self._snapshot_position()
            replica_side = self._pool.submit(self._replica_side, query(self.rd, table, rng), position)
            t0 = time.monotonic()
            primary_rows = p.run(query(self.d, table, rng))
            primary_s = time.monotonic() - t0
        finally:
            p.run("COMMIT")
        replica_rows, replica_s, waited = replica_side.result()
        self.throttle.after_chunk(waited)
        return _Pair(primary_rows, replica_rows, primary_s, replica_s, waited)

    def _snapshot_position(self) -> BinlogPosition:
        stmt = self.d.snapshot_position()
        exact = self.d.parse_snapshot_position(self.primary.run(stmt)) if stmt is not None else None
        return exact or self._binlog_position()

    def _binlog_position(self) -> BinlogPosition:
        """The primary's binary-log file and position now, without its GTID set: a transaction is written to the
        binary log before its InnoDB commit (which releases its locks and makes it visible), so the file position
        is at or past every transaction visible or unlocked; MySQL adds a GTID to gtid_executed only as it
        commits, so the GTID set read at the same moment may lack one of them."""
        position = inspector.binlog_position(self.primary)
        return BinlogPosition(position.file, position.pos)

    def _replica_side(self, stmt: Statement, position: BinlogPosition) -> tuple[list[dict], float, float]:
        waited = self.throttle.applied(position)
        t0 = time.monotonic()
        rows = self.replica.run(stmt)
        return rows, time.monotonic() - t0, waited

    # -- exact confirmation ----------------------------------------------------------------------------------

    def _confirm(self, table: Table, result: ChunkResult, candidates: list[Key]) -> ChunkResult:
        confirmed: list[RowDifference] = []
        for i in range(0, len(candidates), CONFIRM_BATCH):
            batch = candidates[i:i + CONFIRM_BATCH]
            locked = self._locked(lambda lock, d, batch=batch: checksum.rows_by_key(d, table, batch, lock=lock))
            if locked is None:
                result.unverified += batch
                continue
            ours = {key_of(row, table): row["crc"] for row in locked[0]}
            theirs = {key_of(row, table): row["crc"] for row in locked[1]}
            for key in batch:
                if ours.get(key) != theirs.get(key):
                    kind = ("missing_on_replica" if key not in theirs else "extra_on_replica" if key not in ours
                            else "changed")
                    confirmed.append(RowDifference(key, kind))
        result.reads += 1
        result.differing_rows = len(confirmed)
        result.differences = confirmed[:KEYS_KEPT]
        if confirmed:
            result.how = (f"{len(confirmed)} row(s) differ, confirmed with the rows locked on the primary and the "
                          "replica caught up")
        elif result.unverified:
            result.how = f"{len(result.unverified)} row(s) could not be locked on the primary to confirm them"
        else:
            result.how = "equal once the rows were locked on the primary (rows written while the passes read them)"
        return result

    def _confirm_whole(self, table: Table, result: ChunkResult) -> ChunkResult:
        locked = self._locked(lambda lock, d: checksum.whole_table(d, table, lock=lock))
        result.reads += 1
        if locked is None:
            result.unverified = [()]
            result.how = "the table could not be locked on the primary to confirm its difference"
        elif not _same(locked[0][0], locked[1][0]):
            result.differing_rows = 1
            result.differences = [RowDifference(None, "rows_differ")]
            result.how = (f"the table differs ({locked[0][0]['n']} rows on the primary, {locked[1][0]['n']} on the "
                          "replica), confirmed with it locked on the primary and the replica caught up")
        else:
            result.how = "equal once the table was locked on the primary"
        return result

    def _locked(self, statement) -> tuple[list[dict], list[dict]] | None:
        """`statement(lock, dialect)` read on the primary with shared locks, then on the replica once it has applied
        the primary's position after the locks; None when the locks stayed busy or the replica stayed behind."""
        p = self.primary
        for attempt in range(CONFIRM_TRIES):
            if attempt:
                time.sleep(0.2 * 2 ** attempt)
            p.run("START TRANSACTION")
            try:
                ours = p.run(statement(True, self.d))
                position = self._binlog_position()
                waited = self._reach(position)
                if waited is None:  # the replica is behind: release the rows, let it catch up, try again
                    p.run("ROLLBACK")
                    self.throttle.after_chunk(self.throttle.max_lag_s + 1)
                    continue
                theirs = self.replica.run(statement(False, self.rd))
            except DatabaseError as exc:
                p.run("ROLLBACK")
                if exc.code in Dialect.LOCK_BUSY_ERRORS:
                    log.get().info("rows locked by another transaction; trying again", attempt=attempt + 1)
                    continue
                raise
            p.run("ROLLBACK")
            return ours, theirs
        return None

    def _reach(self, position: BinlogPosition) -> float | None:
        started = time.monotonic()
        outcome = replication.wait_applied(self.replica, position, LOCK_HOLD_S)
        if outcome == "reached":
            return time.monotonic() - started
        if outcome == "not_replicating":
            self.throttle.applied(position)  # raises with the replica's error
        return None


class _Done:
    """A value already there, shaped like a future's."""

    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value


def _now(fn, *args: Any) -> _Done:
    return _Done(fn(*args))


def _whole(dialect: Dialect, table: Table, rng: Range) -> Statement:
    return checksum.whole_table(dialect, table)


def _same(a: dict, b: dict) -> bool:
    return int(a["n"]) == int(b["n"]) and int(a["crc_sum"]) == int(b["crc_sum"])


def _order(key: Key) -> tuple:
    """Sort keys of mixed presence the way Python can (the server's collation may differ; this is only for
    naming the first and last)."""
    return tuple((v is None, str(type(v)), v) for v in key)
