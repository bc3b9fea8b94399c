"""The write downtime of the cutover and of the rollback under load, measured from the application's side;
prints JSON.

One sandbox: `migrate start`, wait until caught up, then an application load of --tps orders per second
through HAProxy (separate from the probe) for the whole bench, while `migrate cutover --yes` and `migrate
rollback --yes` alternate, each as its own process, --runs times each. Per switch: the probe's longest gap
between acknowledged writes and its lost acknowledged writes (from the report), the load's own longest gap
between acknowledged orders during the switch, and the load's acknowledged orders missing from the new
primary; each step's duration.

    .venv/bin/python bench/cutover.py [--runs 5] [--tps 500] [--rows 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime

from pydantic import SecretStr

from migrate import log
from migrate.adapters.db import Endpoint
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sample_data
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.workload import AppWorkload
from migrate.workflows import demo, start

WARMUP_S = 3.0
SETTLE_S = 1.0
GOAL = {"median_ms": 100, "max_ms": 300, "lost": 0}


def switch(sb, workflow: str, app: AppWorkload) -> dict:
    began_mono = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "migrate", "--log-level", "warning", workflow, "-p",
                             str(sb.playbook_path), "--yes", "--json"], capture_output=True, text=True)
    ended_mono = time.monotonic()
    time.sleep(SETTLE_S)  # the application keeps writing on the new primary
    if result.returncode != 0:
        return {"workflow": workflow, "ok": False, "exit_code": result.returncode, "error": result.stdout[-2000:]}
    report = json.loads(result.stdout)["report"]
    acked, all_times = app.snapshot()
    times = sorted(t for t in all_times if began_mono <= t <= ended_mono + SETTLE_S)
    new_primary = sb.target if workflow == "cutover" else sb.source
    with new_primary.root() as s:
        present = {r["id"] for r in s.run("SELECT id FROM shop.orders WHERE id IN (" + ",".join(map(str, acked)) + ")")}
    downtime = report["write_downtime"]
    timeline = _timeline(sb, report["run_id"], downtime["from"])
    wall = time.time() - time.monotonic()  # monotonic -> wall clock, to place the load's gap on the timeline
    gaps = [(b - a, a) for a, b in zip(times, times[1:], strict=False)]
    load_gap_s, load_gap_at = max(gaps, default=(0.0, began_mono))
    return {"workflow": workflow, "ok": True, "probe_longest_gap_ms": downtime["longest_gap_ms"],
            "probe_lost": downtime["lost_acknowledged_writes"], "probe_acknowledged": downtime["acknowledged"],
            "load_longest_gap_ms": round(load_gap_s * 1000, 1),
            "load_gap_began_ms": round((load_gap_at + wall - _ts(downtime["from"])) * 1000, 1),
            "load_acknowledged_so_far": len(acked), "load_lost_so_far": len(set(acked) - present),
            "command_s": round(ended_mono - began_mono, 2),
            "steps_ms": {s["name"]: round((s["duration_s"] or 0) * 1000, 1) for s in report["steps"]},
            "timeline_ms": timeline, "probe_errors": [
                {k: e.get(k) for k in ("count", "during", "code", "message", "first_at", "last_at")}
                for e in (report.get("probe") or {}).get("errors", [])][:5]}


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _timeline(sb, run_id: str, gap_from: str) -> dict:
    """Where the probe's longest gap went: the journal's events of the switch (each step's start and end, the
    progress of the steps the application waits through), in ms from the probe's last acknowledged write before
    the gap."""
    events = [json.loads(line) for line in (sb.dir / "state" / "sandbox" / "journal.jsonl").read_text().splitlines()]
    t0, out = _ts(gap_from), {}
    for e in events:
        if e.get("run_id") != run_id or not e.get("step") or e["event"] == "step_progress" and e["step"] not in (
                "block_writes", "final_position", "promote", "repoint"):
            continue
        label = f"{e['step']}:{e['event']}" + (f":{e['what'][:30]}" if e.get("what") else "")
        out[label] = round((_ts(e["ts"]) - t0) * 1000, 1)
    return out


def summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs if r["ok"]]
    return {"median": round(statistics.median(values), 1) if values else None,
            "max": round(max(values), 1) if values else None, "all": values}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tps", type=float, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    log.configure("console", "warning")  # logs on stderr; stdout carries only the JSON
    runs = []
    with sandbox_mod.temporary(args.rows, prefix="bench-") as sb:
        m = Migration(load(sb.playbook_path))
        start.run(m)
        demo.wait_caught_up(m, 300)
        app_ep = Endpoint("127.0.0.1", sb.ports["haproxy"], sample_data.APP_USER, SecretStr(sb.secret("app")))
        app = AppWorkload(lambda: app_ep, rate=args.tps, threads=args.threads,
                          customers=sample_data.customers_for(args.rows)).start()
        time.sleep(WARMUP_S)
        try:
            for i in range(args.runs):
                for workflow in ("cutover", "rollback"):
                    runs.append(switch(sb, workflow, app))
                    print(f"run {i + 1}/{args.runs} {workflow}: {json.dumps(runs[-1])}", file=sys.stderr)
        finally:
            load_result = app.stop()
    by = {w: [r for r in runs if r["workflow"] == w] for w in ("cutover", "rollback")}
    print(json.dumps({
        "bench": "cutover+rollback", "runs_each": args.runs, "target_tps": args.tps, "rows": args.rows,
        "probe_rate_per_s": 50, "load_tps": round(load_result.achieved_tps, 1),
        **{w: {"ok_runs": sum(r["ok"] for r in rs), "probe_longest_gap_ms": summary(rs, "probe_longest_gap_ms"),
               "load_longest_gap_ms": summary(rs, "load_longest_gap_ms"),
               "probe_lost": [r.get("probe_lost") for r in rs], "load_lost": [r.get("load_lost_so_far") for r in rs]}
           for w, rs in by.items()},
        "goal": GOAL, "detail": runs}, indent=2))


if __name__ == "__main__":
    main()
