"""`migrate plan` as the plan tests run it: in-process on a playbook derived from the sandbox's, checks by id."""

from __future__ import annotations

import time

from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.workflows import plan
from tests.helpers import write_playbook

FAST = {"estimates": {"binlog_sample_s": 0.2}}


def run_plan(sb, tmp_path, allow_nonempty: bool = False, **changes) -> dict:
    merged = {**FAST, **changes}
    playbook = write_playbook(sb.playbook_path, tmp_path / f"pb-{time.monotonic_ns()}.yml", **merged)
    result = plan.run(Migration(load(playbook)), allow_nonempty_target=allow_nonempty)
    result["by_id"] = {c["id"]: c for c in result["checks"]}
    return result


def check(result: dict, check_id: str) -> dict:
    return result["by_id"][check_id]
