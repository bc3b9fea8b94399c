"""`migrate demo`: a fresh sandbox, `start`, wait until the replica has caught up, `cutover` under the
live probe, and the measured report. What a newcomer runs first."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate.capabilities import replication
from migrate.capabilities.migration import Migration
from migrate.errors import NeedsHuman, Refused
from migrate.playbook import load
from migrate.sandbox import sandbox
from migrate.workflows import plan, start, switch

CATCH_UP_TIMEOUT_S = 300


def run(directory: Path, *, rows: int | None = None, say: Callable[[str], None] = print) -> dict[str, Any]:
    directory = Path(directory).resolve()
    if (directory / sandbox.MANIFEST).exists():
        say(f"demo: replacing the sandbox in {directory} with a fresh one")
        sandbox.down(directory)
    say(f"demo: starting the sandbox in {directory}")
    sb, _ = sandbox.up(directory, rows)
    m = Migration(load(sb.playbook_path))
    say("demo: migrate plan (preflight checks, read-only)")
    checked = plan.run(m)
    if checked["verdict"] != "go":
        raise Refused(f"migrate plan says no-go: {', '.join(checked['failed'])}",
                      hint=f"run `migrate plan -p {sb.playbook_path}` to see why")
    say(f"demo: plan says go ({len(checked['checks'])} checks)")
    say("demo: migrate start (seed the target, replicate from the RDS-like source)")
    started = start.run(m)
    say("demo: waiting until the replica has caught up")
    caught_up_s = wait_caught_up(m, CATCH_UP_TIMEOUT_S)
    say("demo: migrate cutover --yes, with the probe writing through HAProxy")
    result = switch.run(m, "cutover")
    return {"sandbox": str(directory), "playbook": str(sb.playbook_path), "plan": checked["verdict"],
            "start": started.as_dict(),
            "caught_up_s": round(caught_up_s, 2), **result}


def wait_caught_up(m: Migration, timeout_s: float) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        with m.source() as s, m.target() as t:
            status = replication.read_status(t)
            if status.healthy and replication.measure_lag(s, status).caught_up:
                return time.monotonic() - began
        time.sleep(0.5)
    raise NeedsHuman(f"the replica did not catch up within {timeout_s} s", hint="see `migrate status`")
