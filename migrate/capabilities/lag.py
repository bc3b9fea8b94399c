"""Every lag figure of one replica side by side, for `migrate status`: the server's own Seconds_Behind_Master,
the heartbeat's, and the position's (bytes of binlog across files, transactions when GTIDs are on), with the
apply rate measured over a sampling window, the catch-up ETA it gives, and how much of the primary's binlog
retention the lag leaves.

Rates come from two samples: `sample()` now and one taken earlier (`status --watch` passes its previous one; a
single `status` samples twice, `window_s` apart)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from migrate.adapters.db import DatabaseError, Session
from migrate.adapters.dialect import ReplicaStatus
from migrate.capabilities import heartbeat, inspector, replication

RETENTION_LOW_FRACTION = 0.5  # warn when the lag has used up more than this share of the primary's retention


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic
    source_bytes: int | None  # the primary's binlog written, counted from its oldest binlog kept
    applied_bytes: int | None  # how far the replica applied, on the same count
    source_trx: int | None  # GTID: transactions the primary wrote (sum of sequences over domains)
    applied_trx: int | None


def _offsets(primary: Session) -> dict[str, int]:
    """Each binlog file's first byte, counted from the oldest binlog the primary keeps."""
    start, out = 0, {}
    for name, size in inspector.binary_logs(primary):
        out[name] = start
        start += size
    return out


def _absolute(offsets: dict[str, int], file: str | None, pos: int | None) -> int | None:
    return None if file is None or pos is None or file not in offsets else offsets[file] + pos


def _trx(gtid: str | None) -> int | None:
    return None if gtid is None else replication.mariadb_gtid_distance(gtid, "")


def sample(primary: Session, status: ReplicaStatus) -> Sample:
    position = inspector.binlog_position(primary)
    offsets = _offsets(primary)
    mariadb = primary.dialect.is_mariadb and position.gtid_set is not None
    return Sample(time.monotonic(), _absolute(offsets, position.file, position.pos),
                  _absolute(offsets, status.exec_source_log_file, status.exec_source_log_pos),
                  _trx(position.gtid_set) if mariadb else None,
                  _trx(status.executed_gtid_set) if mariadb and status.executed_gtid_set is not None else None)


def _rate(now: int | None, before: int | None, seconds: float) -> float | None:
    return None if now is None or before is None or seconds <= 0 else max(0.0, (now - before) / seconds)


def _eta(behind: int | None, applying: float | None, arriving: float | None) -> tuple[float | None, str]:
    if behind is None:
        return None, "unknown: the applied position is not in the primary's binlogs"
    if behind <= 0:
        return 0.0, "caught up"
    if applying is None or arriving is None:
        return None, "unknown until a second sample"
    if applying <= arriving:
        return None, (f"not catching up: applying {applying:,.0f} B/s while the primary writes {arriving:,.0f} B/s"
                      if applying else "not catching up: nothing applied in the window")
    return behind / (applying - arriving), "at the rates of the last window"


def side_by_side(primary: Session, replica: Session, status: ReplicaStatus, now: Sample, before: Sample,
                 *, rds: bool) -> dict[str, Any]:
    """The `lag` section of `migrate status` (its keys are documented in the README)."""
    position = replication.measure_lag(primary, status)
    beat = heartbeat.read_lag(primary, replica, int(primary.value("SELECT @@server_id")))
    window = now.at - before.at
    behind = None if now.source_bytes is None or now.applied_bytes is None else now.source_bytes - now.applied_bytes
    applying, arriving = _rate(now.applied_bytes, before.applied_bytes, window), \
        _rate(now.source_bytes, before.source_bytes, window)
    eta, eta_says = _eta(behind, applying, arriving)
    trx_rate = _rate(now.applied_trx, before.applied_trx, window)
    return {
        "seconds_behind": status.seconds_behind,
        "heartbeat_s": beat.lag_s,
        "heartbeat_error_s": beat.error_s,
        "heartbeat": beat.as_dict(),
        "bytes_behind": behind,
        "files_behind": position.files_behind,
        "transactions_behind": position.transactions_behind,
        "apply_bytes_per_s": None if applying is None else round(applying, 1),
        "source_bytes_per_s": None if arriving is None else round(arriving, 1),
        "apply_transactions_per_s": None if trx_rate is None else round(trx_rate, 1),
        "rate_window_s": round(window, 3),
        "eta_s": None if eta is None else round(eta, 1),
        "eta_says": eta_says,
        "source_position": position.as_dict()["source_position"],
        "applied_position": position.as_dict()["applied_position"],
        "caught_up": position.caught_up,
        "retention": retention(primary, rds=rds, lag_s=beat.lag_s if beat.fresh else status.seconds_behind),
    }


def retention(primary: Session, *, rds: bool, lag_s: float | None) -> dict[str, Any]:
    """How long the primary keeps its binlogs, against the lag: the replica needs every binlog from the one it
    applies; once the lag exceeds the retention, the primary purges what it still needs and it must be seeded
    again."""
    unset = "binlog retention hours = NULL: RDS purges binlogs almost at once" if rds else "binlogs never expire"
    try:
        seconds = inspector.binlog_retention_seconds(primary, rds=rds)
    except DatabaseError as exc:
        return {"seconds": None, "left_s": None, "says": f"cannot read the retention: {exc}"}
    if seconds is None:
        return {"seconds": None, "left_s": None, "says": unset}
    if lag_s is None:
        return {"seconds": seconds, "left_s": None, "says": f"binlogs kept {seconds / 3600:g} h; lag unknown"}
    left = seconds - lag_s
    says = f"binlogs kept {seconds / 3600:g} h; at this lag, {left / 3600:.1f} h left before the primary purges " \
           "what the replica still needs"
    if left < seconds * RETENTION_LOW_FRACTION:
        says += ": catch up or raise the retention now"
    return {"seconds": seconds, "left_s": round(left, 1), "says": says}
