"""`migrate demo`: the whole story on a fresh sandbox while an application writes through HAProxy: `plan`,
`start`, `status` until the replica has caught up, `rehearse` (the fire drill and its prediction), `cutover`
under the live probe, and a summary: predicted and measured write downtime, lost writes (the probe's and the
application's own), where the report and the PNG are. What a newcomer runs first."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate.capabilities import replication
from migrate.capabilities.migration import Migration
from migrate.errors import NeedsHuman, Refused
from migrate.playbook import load
from migrate.sandbox import repoints, sandbox
from migrate.sandbox.workload import AppWorkload, WorkloadResult
from migrate.workflows import plan, rehearse, start, status, switch

CATCH_UP_TIMEOUT_S = 300
APP_RATE = 100  # the application's orders per second through HAProxy, for the whole demo


def run(directory: Path, *, rows: int | None = None, options: sandbox.Options | None = None,
        say: Callable[[str], None] = print) -> dict[str, Any]:
    directory = Path(directory).resolve()
    if (directory / sandbox.MANIFEST).exists():
        say(f"demo: replacing the sandbox in {directory} with a fresh one")
        sandbox.down(directory)
    say(f"demo: starting the sandbox in {directory}")
    sb, _ = sandbox.up(directory, rows, options)
    m = Migration(load(sb.playbook_path))
    say("demo: migrate plan (preflight checks, read-only)")
    checked = plan.run(m)
    if checked["verdict"] != "go":
        raise Refused(f"migrate plan says no-go: {', '.join(checked['failed'])}",
                      hint=f"run `migrate plan -p {sb.playbook_path}` to see why")
    say(f"demo: plan says go ({len(checked['checks'])} checks)")
    app = AppWorkload(repoints.app_endpoint(sb), rate=APP_RATE, threads=2).start()
    say(f"demo: the application writes {APP_RATE} orders/s {repoints.describe_app(sb)} from now on")
    try:
        say(f"demo: migrate start (seed the target, replicate from the "
            f"{'RDS-like' if sb.options.source == 'rds' else 'self-managed'} source)")
        started = start.run(m)
        say("demo: migrate status, until the replica has caught up")
        caught_up_s = wait_caught_up(m, CATCH_UP_TIMEOUT_S, say=say)
        say("demo: migrate rehearse (the fire drill on the rehearsal server; production untouched)")
        drill = rehearse.run(m)
        say("demo: " + drill["summary"].splitlines()[0])
        wait_caught_up(m, CATCH_UP_TIMEOUT_S)
        say("demo: migrate cutover --yes, with the probe writing through HAProxy")
        result = switch.run(m, "cutover")
        time.sleep(1)  # the application goes on writing on the new primary
    finally:
        writes = app.stop()
    missing = _missing_orders(sb, writes)
    prediction = result["report"].get("prediction") or {}
    summary = _summary(result["report"], prediction, writes, missing)
    return {"sandbox": str(directory), "playbook": str(sb.playbook_path), "plan": checked["verdict"],
            "start": started.as_dict(), "caught_up_s": round(caught_up_s, 2),
            "rehearsal": {"report": drill["report_path"], "prediction": drill.get("prediction")},
            "application": {"orders_acknowledged": len(writes.acked_order_ids), "orders_missing": len(missing),
                            "failures": writes.failures, "longest_gap_ms": round(writes.longest_gap_s * 1000, 1)},
            **result, "summary": summary}


def _missing_orders(sb, writes: WorkloadResult) -> list[int]:
    """The application's acknowledged orders that are not on the target, where it writes after the cutover."""
    if not writes.acked_order_ids:
        return []
    with sb.target.root() as t:
        present = {r["id"] for r in t.run("SELECT id FROM shop.orders WHERE id IN ("
                                          + ",".join(str(int(i)) for i in writes.acked_order_ids) + ")")}
    return sorted(set(writes.acked_order_ids) - present)


def _summary(report: dict[str, Any], prediction: dict[str, Any], writes: WorkloadResult, missing: list[int]) -> str:
    wd = report["write_downtime"]
    predicted = prediction.get("write_downtime_ms")
    lines = [f"write downtime: predicted {predicted:.0f} ms by the rehearsal, measured {wd['longest_gap_ms']:.0f} ms "
             f"by the probe" if predicted is not None else
             f"write downtime: measured {wd['longest_gap_ms']:.0f} ms by the probe (no prediction)",
             f"lost writes: {wd['lost_acknowledged_writes']} of the probe's {wd['acknowledged']} acknowledged; "
             f"{len(missing)} of the application's {len(writes.acked_order_ids)} acknowledged orders "
             f"(its longest gap {writes.longest_gap_s * 1000:.0f} ms)",
             f"report: {report['files']['markdown']}"]
    if report["files"].get("timeline"):
        lines.append(f"timeline: {report['files']['timeline']}")
    return "\n".join(lines)


def wait_caught_up(m: Migration, timeout_s: float, say: Callable[[str], None] | None = None) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if say:
            now = status.read(m, window_s=0.2)
            lag = now.get("lag") or {}
            healthy = (now.get("replication") or {}).get("healthy")
            behind = lag.get("transactions_behind", lag.get("bytes_behind"))
            say(f"demo: status: {now['phase']}; replication {'healthy' if healthy else 'NOT healthy'}, "
                f"{behind if behind is not None else '?'} transaction(s) behind, caught up: "
                f"{'yes' if lag.get('caught_up') else 'no'}")
        with m.source() as s, m.target() as t:
            st = replication.read_status(t)
            if st.healthy and replication.measure_lag(s, st).caught_up:
                return time.monotonic() - began
        time.sleep(0.5)
    raise NeedsHuman(f"the replica did not catch up within {timeout_s} s", hint="see `migrate status`")
