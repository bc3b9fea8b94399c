"""`migrate demo`, the whole story on a fresh sandbox under a live application load: plan, start, status until
caught up, rehearse, cutover, and a summary with the predicted and measured write downtime and no lost write."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from migrate.sandbox import sandbox as sandbox_mod
from tests.helpers import run_migrate


def test_the_demo_tells_the_whole_story_and_loses_nothing():
    parent = Path(tempfile.mkdtemp(prefix="mig-demo-", dir="/tmp"))
    directory = parent / "sb"
    try:
        result = run_migrate("--log-level", "warning", "demo", "--dir", str(directory), "--json", timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out = json.loads(result.stdout)
        said = result.stderr
        for step in ("migrate plan", "migrate start", "migrate status", "migrate rehearse", "migrate cutover"):
            assert f"demo: {step}" in said, said
        assert out["plan"] == "go" and out["report"]["workflow"] == "cutover" and out["report"]["status"] == "done"
        predicted, measured = out["report"]["prediction"]["write_downtime_ms"], out["report"]["write_downtime"]
        assert predicted == out["rehearsal"]["prediction"]["write_downtime_ms"]
        assert measured["lost_acknowledged_writes"] == 0
        assert out["application"]["orders_acknowledged"] > 100 and out["application"]["orders_missing"] == 0
        assert f"predicted {predicted:.0f} ms" in out["summary"] and "timeline:" in out["summary"]
        assert Path(out["report"]["files"]["timeline"]).stat().st_size > 10_000
    finally:
        if (directory / sandbox_mod.MANIFEST).exists():
            sandbox_mod.down(directory)
        shutil.rmtree(parent, ignore_errors=True)
