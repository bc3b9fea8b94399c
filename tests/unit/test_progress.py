"""Progress figures: rate from what was seen to move, ETA from the rate, human units."""

from __future__ import annotations

import time

from migrate.runner.progress import Progress, human


def test_rate_and_eta_come_from_the_movement_seen():
    p = Progress(terminal=False)
    assert "rate" not in p.update("load", done=100, total=1100, unit="rows")
    time.sleep(0.6)
    figures = p.update("load", done=400, total=1100, unit="rows")
    assert figures["pct"] == 36.4
    rate = 300 / 0.6
    assert abs(figures["eta_s"] - 700 / rate) <= 1


def test_human_units():
    assert human(1_500_000, "B") == "1.5 MB" and human(2_000_000_000, "B") == "2.0 GB" and human(12, "rows") == "12 rows"
