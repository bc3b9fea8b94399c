"""The cutover's write downtime under load, measured from the application's side; prints JSON.

Each run: a fresh sandbox, `migrate start`, wait until caught up, an application load of --tps orders per
second through HAProxy (separate from the probe), then `migrate cutover --yes` as its own process. Per
run: the probe's longest gap between acknowledged writes, its lost acknowledged writes, and the load's
acknowledged orders missing from the new primary.

    .venv/bin/python bench/cutover.py [--runs 5] [--tps 500] [--rows 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

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


def one_run(rows: int, tps: float, threads: int) -> dict:
    with sandbox_mod.temporary(rows, prefix="bench-") as sb:
        m = Migration(load(sb.playbook_path))
        start.run(m)
        demo.wait_caught_up(m, 300)
        app_ep = Endpoint("127.0.0.1", sb.ports["haproxy"], sample_data.APP_USER, SecretStr(sb.secret("app")))
        app = AppWorkload(lambda: app_ep,
                          rate=tps, threads=threads, customers=sample_data.customers_for(rows)).start()
        time.sleep(WARMUP_S)
        began = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "migrate", "--log-level", "warning", "cutover", "-p",
                                 str(sb.playbook_path), "--yes", "--json"], capture_output=True, text=True)
        cutover_s = time.monotonic() - began
        time.sleep(1.0)  # the application keeps writing on the new primary
        load_result = app.stop()
        if result.returncode != 0:
            return {"ok": False, "exit_code": result.returncode, "error": result.stdout[-2000:]}
        report = json.loads(result.stdout)["report"]
        with sb.target.root() as t:
            ids = load_result.acked_order_ids
            present = {r["id"] for r in t.run("SELECT id FROM shop.orders WHERE id IN (" + ",".join(map(str, ids)) + ")")} if ids else set()
        downtime = report["write_downtime"]
        return {"ok": True, "longest_gap_ms": downtime["longest_gap_ms"],
                "probe_lost": downtime["lost_acknowledged_writes"], "probe_acknowledged": downtime["acknowledged"],
                "load_tps": round(load_result.achieved_tps, 1), "load_acknowledged": len(ids),
                "load_lost": len(set(ids) - present), "load_failed_attempts": load_result.failures,
                "cutover_command_s": round(cutover_s, 2),
                "steps_s": {s["name"]: s["duration_s"] for s in report["steps"]}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tps", type=float, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    log.configure("console", "warning")  # logs on stderr; stdout carries only the JSON
    runs = []
    for i in range(args.runs):
        runs.append(one_run(args.rows, args.tps, args.threads))
        print(f"run {i + 1}/{args.runs}: {json.dumps(runs[-1])}", file=sys.stderr)
    gaps = [r["longest_gap_ms"] for r in runs if r["ok"]]
    print(json.dumps({
        "bench": "cutover", "runs": args.runs, "target_tps": args.tps, "rows": args.rows,
        "probe_rate_per_s": 50, "ok_runs": len(gaps),
        "longest_gap_ms": {"median": round(statistics.median(gaps), 1) if gaps else None,
                           "max": round(max(gaps), 1) if gaps else None, "all": gaps},
        "lost_acknowledged_writes": {"probe": [r.get("probe_lost") for r in runs],
                                     "load": [r.get("load_lost") for r in runs]},
        "load_tps": [r.get("load_tps") for r in runs],
        "goal": {"median_ms": 250, "max_ms": 1000, "lost": 0},
        "detail": runs}, indent=2))


if __name__ == "__main__":
    main()
