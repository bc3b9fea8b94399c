"""A run's timeline as a PNG beside its report: the steps as bars on one time axis, the probe's acknowledged
writes as ticks and its failed attempts as crosses, the longest write gap shaded, the point of no return
marked. A second panel zooms on the write gap: a switch's steps take milliseconds inside a run of seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from migrate.runner.store import wall_of

POINT_OF_NO_RETURN = "repoint"  # the step after which the way back is reverse replication
COLOURS = {"done": "#2e7d32", "skipped": "#9e9e9e", "failed": "#c62828", "rolled_back": "#ef6c00",
           "not_run": "#e0e0e0"}
ZOOM_MARGIN_S = 0.25


def draw(path: Path, report: dict[str, Any], acks: list[float], failures: list[float]) -> Path | None:
    """Draw `report` (report.json's content) with the probe's acknowledgement and failure times (epoch s) into
    `path`; None when no step has a start time (nothing to place on the axis)."""
    steps = [s for s in report.get("steps", []) if s.get("started_at")]
    if not steps:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = min([wall_of(s["started_at"]) for s in steps] + acks[:1])
    bars = [(s["name"], wall_of(s["started_at"]) - t0, float(s.get("duration_s") or 0), s["status"]) for s in steps]
    acks_s, failures_s = [a - t0 for a in acks], [f - t0 for f in failures]
    downtime = report.get("write_downtime") or {}
    gap = (wall_of(downtime["from"]) - t0, wall_of(downtime["to"]) - t0) if downtime.get("from") and \
        downtime.get("to") else None
    switch = [b for b in bars if b[0] in ("block_writes", POINT_OF_NO_RETURN)]
    zoom = bool(gap or switch)
    fig, panels = plt.subplots(2 if zoom else 1, 1, figsize=(11, (3.2 if zoom else 1.6) + 0.55 * len(bars)),
                               squeeze=False)
    panels = panels[:, 0]
    predicted = (report.get("prediction") or {}).get("write_downtime_ms")
    for ax in panels:
        _panel(ax, bars, acks_s, failures_s, gap, predicted, downtime.get("longest_gap_ms"))
    end = max([b[1] + b[2] for b in bars] + acks_s[-1:])
    panels[0].set_xlim(0, max(end, 0.001) * 1.02)
    panels[0].set_title(_title(report, downtime), loc="left", fontsize=10)
    if zoom:
        lo = min(([gap[0]] if gap else []) + [b[1] for b in switch])
        hi = max(([gap[1]] if gap else []) + [b[1] + b[2] for b in switch])
        panels[1].set_xlim(lo - ZOOM_MARGIN_S, hi + ZOOM_MARGIN_S)
        panels[1].set_title(f"around the write block: {lo:.2f} s to {hi:.2f} s", loc="left", fontsize=9)
    panels[-1].set_xlabel("seconds from the run's first step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    path.chmod(0o600)
    return path


def _panel(ax, bars, acks, failures, gap, predicted_ms: float | None = None, gap_ms: float | None = None) -> None:
    rows = len(bars)
    for i, (_name, start, duration, status) in enumerate(bars):
        ax.broken_barh([(start, max(duration, 0.002))], (rows - i - 0.4, 0.8), color=COLOURS.get(status, "#607d8b"))
    probe = bool(acks or failures)
    ax.set_yticks([rows - i for i in range(rows)] + ([0] if probe else []),
                  [b[0] for b in bars] + (["probe writes"] if probe else []), fontsize=8)
    if acks:
        ax.vlines(acks, -0.35, 0.35, color="#1565c0", linewidth=0.6, label="acknowledged write")
    if failures:
        ax.plot(failures, [0] * len(failures), "x", color="#c62828", markersize=5, label="failed attempt")
    if gap:
        ms = gap_ms if gap_ms is not None else 1000 * (gap[1] - gap[0])  # the report's figure, not the rounded ends
        ax.axvspan(gap[0], gap[1], color="#c62828", alpha=0.15, label=f"longest write gap {ms:.0f} ms")
    if gap and predicted_ms is not None:  # the prediction drawn from where the measured gap began, to compare
        ax.broken_barh([(gap[0], predicted_ms / 1000)], (-0.75, 0.25), facecolor="none", edgecolor="#6a1b9a",
                       hatch="////", linewidth=0.8, label=f"predicted write downtime {predicted_ms:.0f} ms")
    repoint = next((b for b in bars if b[0] == POINT_OF_NO_RETURN and b[3] == "done"), None)
    if repoint:
        ax.axvline(repoint[1] + repoint[2], color="black", linestyle="--", linewidth=1, label="point of no return")
    ax.set_ylim(-0.8 if probe else 0.4, rows + 0.8)
    ax.grid(axis="x", alpha=0.3)
    if acks or gap or repoint:
        ax.legend(loc="upper right", fontsize=7, framealpha=0.8)


def _title(report: dict[str, Any], downtime: dict[str, Any]) -> str:
    ms, lost = downtime.get("longest_gap_ms"), downtime.get("lost_acknowledged_writes")
    parts = [f"{report.get('workflow')} {report.get('run_id')}: {report.get('status')}"]
    if ms is not None:
        parts.append(f"write downtime {ms:.0f} ms (probe)")
    predicted = (report.get("prediction") or {}).get("write_downtime_ms")
    if predicted is not None:
        parts.append(f"predicted {predicted:.0f} ms")
    if lost is not None:
        parts.append(f"{lost} acknowledged write(s) lost")
    return "; ".join(parts)
