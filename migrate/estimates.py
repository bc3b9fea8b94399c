"""The plan's estimates: seed time from data size, catch-up from the binlog write rate, cutover downtime.

The default figures were measured on the sandbox (2 cores, MariaDB 10.11, loopback) by the benchmarks
named below; a playbook's `estimates:` section overrides them with figures from your own rehearsal.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from migrate.playbook import Estimates

# bench/plan_defaults.py --rows 300000 (mydumper/myloader on the target host)
SEED_MB_PER_S = 15.6  # 61.5 MB in 3.94 s, 2026-11-25
# bench/plan_defaults.py: binlog bytes applied per second by a replica catching up
APPLY_MB_PER_S = 3.85  # 34.7 MB of binlog (3,899 orders/s) applied in 9.0 s
# bench/cutover.py --runs 5 --tps 500: the longest write gap of 5 runs (median 163 ms)
CUTOVER_DOWNTIME_MS = 242.0
SEED_OVERHEAD_S = 5.0  # connections, tool start, schema creation, accounts
RETENTION_MARGIN = 2.0  # keep binlogs for twice the estimated seed + catch-up


@dataclass(frozen=True)
class Estimate:
    data_mb: float
    seed_s: float
    seed_mb_per_s: float
    binlog_mb_per_s: float
    apply_mb_per_s: float
    catch_up_s: float | None  # None: the replica cannot keep up with the write rate
    cutover_downtime_ms: float
    stable_wait_s: float
    retention_needed_h: int
    figures: str

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def estimate(data_bytes: int, binlog_bytes_per_s: float, settings: Estimates, stable_for_s: float,
             rehearsed: dict | None = None) -> Estimate:
    """`rehearsed`: the latest rehearsal's prediction (report.latest_prediction); its figure is used for the
    cutover's downtime unless the playbook sets one."""
    seed_rate = settings.seed_mb_per_s or SEED_MB_PER_S
    apply_rate = settings.apply_mb_per_s or APPLY_MB_PER_S
    from_rehearsal = rehearsed is not None and not settings.cutover_downtime_ms
    downtime = settings.cutover_downtime_ms or (rehearsed["write_downtime_ms"] if from_rehearsal
                                                else CUTOVER_DOWNTIME_MS)
    data_mb = data_bytes / 1e6
    binlog_rate = binlog_bytes_per_s / 1e6
    seed_s = SEED_OVERHEAD_S + data_mb / seed_rate
    backlog_mb = binlog_rate * seed_s
    catch_up = backlog_mb / (apply_rate - binlog_rate) if apply_rate > binlog_rate else None
    window_s = seed_s + (catch_up if catch_up is not None else seed_s)
    retention_h = max(1, math.ceil(window_s * RETENTION_MARGIN / 3600))
    overridden = [k for k in ("seed_mb_per_s", "apply_mb_per_s", "cutover_downtime_ms") if getattr(settings, k)]
    figures = ("measured on the sandbox by bench/" + (f"; playbook overrides {', '.join(overridden)}"
                                                      if overridden else "")
               + (f"; cutover downtime predicted by rehearsal {rehearsed['rehearsal_run']}" if from_rehearsal else ""))
    return Estimate(round(data_mb, 1), seed_s, seed_rate, binlog_rate, apply_rate, catch_up, downtime,
                    stable_for_s, retention_h, figures)
