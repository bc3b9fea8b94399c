"""The timeline PNG from a report: drawn for runs whose steps have start times, private, a real PNG."""

from __future__ import annotations

import stat

from migrate.capabilities import timeline
from migrate.runner.store import iso_of

T0 = 1_800_000_000.0


def report(steps, gap=None) -> dict:
    return {"workflow": "cutover", "run_id": "abc", "status": "rolled_back",
            "steps": [{"name": n, "status": s, "started_at": iso_of(T0 + at), "duration_s": d}
                      for n, s, at, d in steps],
            "write_downtime": {"longest_gap_ms": 1000 * (gap[1] - gap[0]) if gap else None,
                               "from": iso_of(T0 + gap[0]) if gap else None, "to": iso_of(T0 + gap[1]) if gap else None,
                               "lost_acknowledged_writes": 0}}


def test_a_rolled_back_cutover_is_drawn_with_its_failed_attempts(tmp_path):
    data = report([("gates", "done", 0.0, 2.0), ("block_writes", "rolled_back", 2.0, 0.05),
                   ("final_position", "failed", 2.05, 1.0)], gap=(1.99, 3.2))
    acks = [T0 + i * 0.02 for i in range(100)] + [T0 + 3.2 + i * 0.02 for i in range(20)]
    path = timeline.draw(tmp_path / "t.png", data, acks, [T0 + 2.5, T0 + 2.8])
    assert path and path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 20_000
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_nothing_is_drawn_without_step_start_times(tmp_path):
    data = report([])
    data["steps"] = [{"name": "gates", "status": "not_run", "duration_s": 0}]
    assert timeline.draw(tmp_path / "t.png", data, [], []) is None and not (tmp_path / "t.png").exists()


def test_a_prediction_is_drawn_beside_the_measured_gap_and_named_in_the_title(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    data = report([("gates", "done", 0.0, 2.0), ("block_writes", "done", 2.0, 0.01), ("repoint", "done", 2.02, 0.01)],
                  gap=(1.99, 2.03))
    data["prediction"] = {"write_downtime_ms": 55.0}
    assert timeline._title(data, data["write_downtime"]).endswith("predicted 55 ms; 0 acknowledged write(s) lost")
    plain = timeline.draw(tmp_path / "plain.png", {**data, "prediction": None}, [T0, T0 + 3], [])
    drawn = timeline.draw(tmp_path / "p.png", data, [T0, T0 + 3], [])
    assert drawn.read_bytes() != plain.read_bytes()
