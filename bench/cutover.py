"""The write downtime of the cutover and of the rollback under load, measured from the application's side;
prints JSON.

One sandbox: `migrate start`, wait until caught up, then an application load of --tps orders per second
through HAProxy (separate from the probe) for the whole bench, while `migrate cutover --yes` and `migrate
rollback --yes` alternate, each as its own process, --runs times each. Per switch: the probe's longest gap
between acknowledged writes and its lost acknowledged writes (from the report), the load's own longest gap
between acknowledged orders during the switch, and the load's acknowledged orders missing from the new
primary; each step's duration.

    .venv/bin/python bench/cutover.py [--runs 5] [--tps 500] [--rows 10000]
        [--write-block revoke_and_kill|read_only|parameter_group] [--repoint haproxy|command|ssh_file|route53]
        [--source rds|self-managed] [--applier-delay SECONDS]

One combination of write block, repoint and source per invocation, as `migrate sandbox up` takes them
(`migrate.sandbox.sandbox.Options`; --source self-managed alone means --write-block read_only, as on the CLI). The
load writes where the sandbox's application does (`repoints.app_endpoint`: HAProxy, or with route53 the record's
address read through the Route53 API before each connection). With parameter_group, --applier-delay sets how long
the sandbox's stand-in for AWS (the RDS parameter-group applier) waits before applying a change, before the first
run; the JSON reports it, and per switch the block's AWS parts apart: the cutover's `block_writes` (API call,
then the wait until the server reads read_only = 1) and the rollback's `open_writes` (the group put back, then the
wait until the RDS source is writable). The goal (longest gap <= 300 ms, nothing lost) is judged for every
combination but parameter_group, whose downtime holds AWS's apply latency. `bench/matrix.sh` runs the issue's
matrix, one JSON file per combination.

With --rehearse, the fire drill instead: per run, under the same load, `migrate rehearse --json` (its own
process), then `migrate cutover --yes`, then `migrate rollback --yes` (back to a phase the next rehearsal runs
in). Per run: the rehearsal's predicted write downtime beside the cutover's measured one (the probe's longest
gap, from the cutover's report) with the error and whether it is within the goal (|error| <= max(25% of the
measurement, 100 ms)); and, measured by the load itself, its longest gap between acknowledged orders during the
rehearsal beside its longest gap over a window of the same length with no rehearsal (the steady load just
before it), and what the rehearsal added (goal: <= 100 ms in every run); the rehearsal's steps' durations.

    .venv/bin/python bench/cutover.py --rehearse [--runs 5] [--tps 500] [--rows 10000] [--quiet-s 30]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from datetime import datetime

from migrate import log
from migrate.capabilities.migration import Migration
from migrate.errors import BadInput
from migrate.playbook import load
from migrate.sandbox import repoints, sample_data
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.workload import AppWorkload
from migrate.workflows import demo, start

WARMUP_S = 3.0
SETTLE_S = 1.0
GOAL = {"median_ms": 100, "max_ms": 300, "lost": 0}
# Issue 11: every combination's longest write gap <= 300 ms, nothing lost; parameter_group's downtime holds AWS's
# apply latency (the sandbox's applier delay here), so it is reported, not judged.
MATRIX_GOAL = {"max_ms": 300, "lost": 0, "judged": "every write block and repoint but parameter_group"}
# The parameter_group block's own sentence (write_block/parameter_group.py): its AWS parts.
PG_BLOCK = re.compile(r"\(API (?P<api>\d+) ms\), applied by the server (?P<apply>\d+) ms later")
# Issue 10: the prediction within max(25% of the measurement, 100 ms) of it; the rehearsal adds at most 100 ms
# to the application's longest write gap.
REHEARSE_GOAL = {"prediction_error": "abs(error_ms) <= max(0.25 * measured_ms, 100)", "added_load_gap_ms": 100}


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
    aws = _parameter_group_parts(sb, workflow, report) if sb.options.write_block == "parameter_group" else None
    wall = time.time() - time.monotonic()  # monotonic -> wall clock, to place the load's gap on the timeline
    gaps = [(b - a, a) for a, b in zip(times, times[1:], strict=False)]
    load_gap_s, load_gap_at = max(gaps, default=(0.0, began_mono))
    return {"workflow": workflow, "ok": True, "probe_longest_gap_ms": downtime["longest_gap_ms"],
            "probe_lost": downtime["lost_acknowledged_writes"], "probe_acknowledged": downtime["acknowledged"],
            "load_longest_gap_ms": round(load_gap_s * 1000, 1),
            "load_gap_began_ms": round((load_gap_at + wall - _ts(downtime["from"])) * 1000, 1),
            "load_acknowledged_so_far": len(acked), "load_lost_so_far": len(set(acked) - present),
            "command_s": round(ended_mono - began_mono, 2),
            **({"parameter_group": aws} if aws is not None else {}),
            "steps_ms": {s["name"]: round((s["duration_s"] or 0) * 1000, 1) for s in report["steps"]},
            "timeline_ms": timeline, "probe_errors": [
                {k: e.get(k) for k in ("count", "during", "code", "message", "first_at", "last_at")}
                for e in (report.get("probe") or {}).get("errors", [])][:5],
            **({"prediction": report["prediction"]} if report.get("prediction") else {})}


def _parameter_group_parts(sb, workflow: str, report: dict) -> dict:
    """Where AWS's part of a parameter_group switch went. Cutover: the RDS source is blocked through its group
    (`block_writes`: the API call, then the wait until the server reads read_only = 1, from the step's sentence
    and the run's facts). Rollback: the target is blocked with read_only, and the RDS source is made writable again
    through its group in `open_writes`, after the repoint: that step's duration is the restore's API call plus the
    wait for the server."""
    steps = {s["name"]: s for s in report["steps"]}
    if workflow == "rollback":
        step = steps.get("open_writes", {})
        return {"where": "open_writes", "open_writes_ms": round((step.get("duration_s") or 0) * 1000, 1),
                "message": step.get("message")}
    message = steps.get("block_writes", {}).get("message") or ""
    found = PG_BLOCK.search(message)
    state = json.loads((sb.dir / "state" / "sandbox" / "state.json").read_text())
    timing = state.get("runs", {}).get(workflow, {}).get("facts", {}).get("block_timing") or {}
    api = timing.get("api_ms", int(found["api"]) if found else None)
    apply = timing.get("apply_ms", int(found["apply"]) if found else None)
    step_ms = round((steps.get("block_writes", {}).get("duration_s") or 0) * 1000, 1)
    # Before the API call the step reads the group (two RDS API calls) and saves it durably: writes still flow.
    before = round(step_ms - api - apply - (timing.get("kill_ms") or 0), 1) if None not in (api, apply) else None
    return {"where": "block_writes", "api_ms": api, "apply_ms": apply, "kill_ms": timing.get("kill_ms"),
            "before_api_ms": before, "sessions_killed": timing.get("sessions"), "message": message}


def rehearse(sb, app: AppWorkload, quiet_since: float) -> dict:
    """One `migrate rehearse --json`; the load's longest gap during it beside its longest gap over a window of the
    same length with no rehearsal: the steady load just before it when it had been steady that long (since
    `quiet_since`), else the steady load just after it."""
    began_mono = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "migrate", "--log-level", "warning", "rehearse", "-p",
                             str(sb.playbook_path), "--json"], capture_output=True, text=True)
    ended_mono = time.monotonic()
    length = ended_mono - began_mono
    if quiet_since <= began_mono - length:
        where, window = "before", (began_mono - length, began_mono)
    else:
        time.sleep(length + SETTLE_S)
        where, window = "after", (ended_mono + SETTLE_S, ended_mono + SETTLE_S + length)
    _, times = app.snapshot()
    during, steady = _longest_gap(times, began_mono, ended_mono), _longest_gap(times, *window)
    load = {"load_longest_gap_ms": round(during * 1000, 1), "load_steady_longest_gap_ms": round(steady * 1000, 1),
            "load_added_gap_ms": round((during - steady) * 1000, 1), "steady_window": where,
            "command_s": round(length, 2)}
    if result.returncode != 0:
        return {"ok": False, "exit_code": result.returncode, "error": (result.stdout + result.stderr)[-2000:], **load}
    out = json.loads(result.stdout)
    report, predicted = out["report"], out["prediction"]
    return {"ok": True, "run_id": report["run_id"], "predicted_ms": predicted["write_downtime_ms"],
            "drill_gap_ms": predicted["drill_gap_ms"], "untimed": predicted["untimed"],
            "terms_ms": {t["term"]: t["ms"] for t in predicted["terms"]},
            "probe_lost": report["write_downtime"]["lost_acknowledged_writes"], **load,
            "steps_ms": {s["name"]: round((s["duration_s"] or 0) * 1000, 1) for s in report["steps"]}}


def _longest_gap(ack_times: list[float], start: float, end: float) -> float:
    """The longest interval without an acknowledged order within [start, end], its edges counted."""
    times = [start, *sorted(t for t in ack_times if start <= t <= end), end]
    return max(b - a for a, b in zip(times, times[1:], strict=False))


def rehearse_run(sb, app: AppWorkload, quiet_s: float) -> dict:
    """A rehearsal after `quiet_s` of steady load, the cutover it predicts, the rollback that allows the next."""
    quiet_since = time.monotonic()
    time.sleep(quiet_s)
    drill = rehearse(sb, app, quiet_since)
    if not drill["ok"]:  # the cutover would compare itself with an older rehearsal's prediction
        return {"ok": False, "rehearse": drill}
    cut = switch(sb, "cutover", app)
    back = switch(sb, "rollback", app)
    run = {"rehearse": drill, "cutover": cut, "rollback": back}
    if not cut["ok"]:
        return {"ok": False, **run}
    tool = cut.get("prediction") or {}
    measured, predicted = cut["probe_longest_gap_ms"], drill["predicted_ms"]
    error = predicted - measured
    return {"ok": True, "predicted_ms": predicted, "measured_ms": measured, "error_ms": round(error, 1),
            "error_pct": round(100 * error / measured, 1) if measured else None,
            "within_goal": abs(error) <= max(0.25 * measured, 100),
            "tool_prediction": {k: tool.get(k) for k in ("rehearsal_run", "measured_ms", "error_ms", "error_pct",
                                                         "within_goal")},
            "prediction_of_this_rehearsal": tool.get("rehearsal_run") == f"rehearse-{drill['run_id']}",
            "load_rehearsal_gap_ms": drill["load_longest_gap_ms"],
            "load_steady_gap_ms": drill["load_steady_longest_gap_ms"], "load_added_gap_ms": drill["load_added_gap_ms"],
            "added_within_goal": drill["load_added_gap_ms"] <= REHEARSE_GOAL["added_load_gap_ms"], **run}


def rehearse_summary(args, runs: list[dict], load_tps: float) -> dict:
    ok = [r for r in runs if r["ok"]]
    return {
        "bench": "rehearse+cutover+rollback", "runs": args.runs, "ok_runs": len(ok), "target_tps": args.tps,
        "rows": args.rows, "probe_rate_per_s": 50, "load_tps": round(load_tps, 1),
        **{key: summary(runs, key) for key in ("predicted_ms", "measured_ms", "error_ms", "error_pct",
                                               "load_rehearsal_gap_ms", "load_steady_gap_ms", "load_added_gap_ms")},
        "abs_error_ms_max": max((abs(r["error_ms"]) for r in ok), default=None),
        "within_goal": [r.get("within_goal") for r in runs],
        "added_within_goal": [r.get("added_within_goal") for r in runs],
        "rehearse_steps_ms": {name: summary([{"ok": True, name: r["rehearse"]["steps_ms"].get(name, 0)} for r in ok],
                                            name) for name in (ok[0]["rehearse"]["steps_ms"] if ok else {})},
        "goals_met": len(ok) == args.runs and all(r["within_goal"] and r["added_within_goal"] for r in ok),
        "goal": REHEARSE_GOAL, "detail": runs}


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
                "block_writes", "final_position", "promote", "repoint", "open_writes"):
            continue
        label = f"{e['step']}:{e['event']}" + (f":{e['what'][:30]}" if e.get("what") else "")
        out[label] = round((_ts(e["ts"]) - t0) * 1000, 1)
    return out


def summary(runs: list[dict], key: str) -> dict:
    values = [r[key] for r in runs if r["ok"] and r[key] is not None]
    return {"median": round(statistics.median(values), 1) if values else None,
            "max": round(max(values), 1) if values else None, "all": values}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tps", type=float, default=500)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rehearse", action="store_true",
                        help="per run: a rehearsal, the cutover it predicts, a rollback (see the docstring)")
    parser.add_argument("--quiet-s", type=float, default=30.0,
                        help="--rehearse: steady load before the first rehearsal; later ones: the previous "
                             "rehearsal's length and a quarter")
    parser.add_argument("--write-block", choices=sandbox_mod.WRITE_BLOCKS, default=None,
                        help="the sandbox playbook's cutover.write_block (default revoke_and_kill; read_only with "
                             "--source self-managed)")
    parser.add_argument("--repoint", choices=sandbox_mod.REPOINTS, default="haproxy")
    parser.add_argument("--source", choices=sandbox_mod.SOURCES, default="rds")
    parser.add_argument("--applier-delay", type=float, default=None, metavar="SECONDS",
                        help="parameter_group only: the sandbox's RDS applier delay, set before the runs "
                             "(default: the sandbox's, 1 s)")
    args = parser.parse_args()
    try:
        options = combination(args)
    except BadInput as exc:
        parser.error(exc.message + (f" ({exc.hint})" if exc.hint else ""))
    log.configure("console", "warning")  # logs on stderr; stdout carries only the JSON
    runs = []
    with sandbox_mod.temporary(args.rows, prefix="bench-", options=options) as sb:
        if args.applier_delay is not None:
            sb.rds_applier.set_delay(args.applier_delay)
        applier_delay = sb.rds_applier.delay() if options.write_block == "parameter_group" else None
        m = Migration(load(sb.playbook_path))
        start.run(m)
        demo.wait_caught_up(m, 300)
        app = AppWorkload(repoints.app_endpoint(sb), rate=args.tps, threads=args.threads,
                          customers=sample_data.customers_for(args.rows)).start()
        time.sleep(WARMUP_S)
        try:
            quiet_s = args.quiet_s
            for i in range(args.runs):
                if args.rehearse:
                    runs.append(rehearse_run(sb, app, quiet_s))
                    quiet_s = 1.25 * runs[-1]["rehearse"]["command_s"] + SETTLE_S  # a window as long before the next
                    print(f"run {i + 1}/{args.runs} rehearse: {json.dumps(runs[-1])}", file=sys.stderr)
                    continue
                for workflow in ("cutover", "rollback"):
                    runs.append(switch(sb, workflow, app))
                    print(f"run {i + 1}/{args.runs} {workflow}: {json.dumps(runs[-1])}", file=sys.stderr)
        finally:
            load_result = app.stop()
    said = {"combination": {**options.as_dict(), "applier_delay_s": applier_delay},
            "app_endpoint": repoints.describe_app(sb)}
    if args.rehearse:
        print(json.dumps({**said, **rehearse_summary(args, runs, load_result.achieved_tps)}, indent=2))
        return
    by = {w: [r for r in runs if r["workflow"] == w] for w in ("cutover", "rollback")}
    judged = options.write_block != "parameter_group"
    per = {w: workflow_summary(rs, args.runs, judged) for w, rs in by.items()}
    print(json.dumps({
        "bench": "cutover+rollback", **said, "runs_each": args.runs, "target_tps": args.tps, "rows": args.rows,
        "probe_rate_per_s": 50, "load_tps": round(load_result.achieved_tps, 1), **per,
        "goal": {**MATRIX_GOAL, "median_ms_hoped": GOAL["median_ms"]},
        "goal_met": all(p["goal_met"] for p in per.values()) if judged else None,
        **({} if judged else {"goal_not_judged": "parameter_group: the write gap holds AWS's apply latency (here the "
                                                 f"sandbox applier's delay, {applier_delay} s); see "
                                                 "parameter_group per workflow"}),
        "detail": runs}, indent=2))


def combination(args) -> sandbox_mod.Options:
    """The sandbox's options from the flags, as `migrate sandbox up` takes them; --applier-delay needs an RDS source
    blocked through its parameter group."""
    write_block = args.write_block or ("read_only" if args.source == "self-managed" else "revoke_and_kill")
    options = sandbox_mod.Options(write_block=write_block, repoint=args.repoint, source=args.source)
    if args.applier_delay is not None and (options.write_block != "parameter_group" or args.applier_delay < 0):
        raise BadInput("--applier-delay is for --write-block parameter_group only, and at least 0 s")
    return options


def workflow_summary(rs: list[dict], runs: int, judged: bool) -> dict:
    """One workflow's switches: gaps, lost writes, step durations (open_writes among them), AWS's parts, the goal."""
    ok = [r for r in rs if r["ok"]]
    out = {"ok_runs": len(ok), "probe_longest_gap_ms": summary(rs, "probe_longest_gap_ms"),
           "load_longest_gap_ms": summary(rs, "load_longest_gap_ms"),
           "probe_lost": [r.get("probe_lost") for r in rs], "load_lost": [r.get("load_lost_so_far") for r in rs],
           "steps_ms": {name: summary([{"ok": True, name: r["steps_ms"].get(name, 0)} for r in ok], name)
                        for name in (ok[0]["steps_ms"] if ok else {})}}
    parts = [r["parameter_group"] for r in ok if "parameter_group" in r]
    if parts:
        keys = [k for k in ("before_api_ms", "api_ms", "apply_ms", "kill_ms", "open_writes_ms") if k in parts[0]]
        out["parameter_group"] = {"where": parts[0]["where"],
                                  **{k: summary([{"ok": True, k: p.get(k)} for p in parts], k) for k in keys}}
    worst = max([r["probe_longest_gap_ms"] for r in ok] + [r["load_longest_gap_ms"] for r in ok], default=None)
    lost = sum((r.get("probe_lost") or 0) + (r.get("load_lost_so_far") or 0) for r in ok)
    out["max_write_gap_ms"] = worst
    out["within_max_ms"] = worst is not None and worst <= MATRIX_GOAL["max_ms"]  # said even where not judged
    out["goal_met"] = (len(ok) == runs and worst is not None and worst <= MATRIX_GOAL["max_ms"] and lost == 0) \
        if judged else None
    return out


if __name__ == "__main__":
    main()
