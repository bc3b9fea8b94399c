"""A real `migrate` process killed with SIGKILL in the middle of a step: rerunning the same command
finishes correctly. While it runs, a second run of the same directory is refused naming its holder.
Afterwards `sandbox down` leaves no process and no file behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from migrate.sandbox import procs
from migrate.sandbox.sandbox import Sandbox
from tests.helpers import ROOT, run_migrate, wait_for

ROWS = 200_000


def _journal(directory) -> list[dict]:
    path = directory / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_sandbox_up_killed_mid_load_resumes_and_down_leaves_nothing(fresh_sandbox_dir):
    directory = fresh_sandbox_dir
    first = subprocess.Popen([sys.executable, "-m", "migrate", "--log-format", "json", "sandbox", "up",
                              "--dir", str(directory), "--rows", str(ROWS)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(e["event"] == "step_started" and e.get("step") == "sample_data"
                              for e in _journal(directory)), 120, "the sample data load to start")
        sb = Sandbox.open(directory)
        wait_for(lambda: _orders(sb) > 0, 60, "the first orders to land")

        second = run_migrate("sandbox", "up", "--dir", str(directory), timeout=60)
        assert second.returncode == 1, second.stderr + second.stdout
        assert f"pid {first.pid}" in second.stdout and "sandbox up" in second.stdout

        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()

    partial = _orders(sb)
    assert 0 < partial < ROWS, f"the kill did not land mid-load ({partial} orders)"
    events = _journal(directory)
    assert events[-1]["event"] != "step_done" or events[-1]["step"] != "sample_data"
    assert json.loads((directory / "state.json").read_text())["runs"]["sandbox-up"]["status"] == "running"

    rerun = run_migrate("sandbox", "up", "--dir", str(directory), "--json", timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    report = json.loads(rerun.stdout)
    statuses = {s["name"]: s["status"] for s in report["run"]["steps"]}
    assert statuses["source_server"] == "skipped" and statuses["aws"] == "skipped"
    assert statuses["sample_data"] == "done"
    assert report["all_running"]
    assert _orders(sb) == ROWS
    with sb.source.root() as root:
        lines = root.value("SELECT COUNT(DISTINCT order_id) FROM shop.order_lines")
        orphans = root.value("SELECT COUNT(*) FROM shop.orders o LEFT JOIN shop.order_lines l "
                             "ON l.order_id = o.id WHERE l.order_id IS NULL")
    assert lines == ROWS and orphans == 0

    down = run_migrate("sandbox", "down", "--dir", str(directory))
    assert down.returncode == 0, down.stderr
    assert not directory.exists()
    assert procs.processes_mentioning(str(directory)) == []
    assert not any(str(directory) in procs.cmdline(int(p)) for p in os.listdir("/proc") if p.isdigit())


def _orders(sb: Sandbox) -> int:
    try:
        with sb.source.root() as root:
            return root.value("SELECT COUNT(*) FROM shop.orders") or 0
    except Exception:  # noqa: BLE001 - not there yet
        return 0
