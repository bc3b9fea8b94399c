"""`migrate start`: seed the target and make it a replica of the source. Resumable: a failure stops
the run (nothing is undone: a seed is expensive), and rerunning continues from the first step not done."""

from __future__ import annotations

from typing import Any

from migrate.capabilities import inspector, phase, report
from migrate.capabilities.migration import Migration
from migrate.errors import Refused
from migrate.runner import Runner, RunResult
from migrate.steps import start as start_steps


def refuse_impossible(m: Migration) -> None:
    """What no step could ever do, said before any step changes anything."""
    pb = m.pb
    if pb.seed.method == "physical" and pb.source.kind == "rds":
        raise Refused("seed.method physical: no physical copy can be taken out of RDS (xtrabackup and "
                      "mariadb-backup need the datadir, which RDS does not expose)", hint="set seed.method: dump")
    if pb.seed.method == "physical" and (pb.source.ssh is None or pb.source.datadir is None):
        raise Refused("seed.method physical needs source.ssh and source.datadir",
                      hint="set them, or use seed.method: dump")
    if pb.seed.consistency == "replica" and pb.source.kind != "rds":
        raise Refused("seed.consistency: replica needs an RDS source (it creates an RDS read replica)",
                      hint="use seed.consistency: lock or auto")


def guard(m: Migration, allow_nonempty_target: bool):
    """Checked under the run lock before any step: the phase allows `start`, and a target that holds data
    of its own is not overwritten unless the user said so. Then the phase says "seeding"."""

    def check(state: dict[str, Any]) -> None:
        now = phase.read(state)
        phase.check_start(now, m.path)
        data = state.get("data", {})
        if not (data.get("seed_started") or data.get("seed")) and not allow_nonempty_target:
            with m.target() as t:
                schemas = [s for s in inspector.user_schemas(t) if s != inspector.TOOL_SCHEMA]
            if schemas:
                raise Refused(f"the target is not empty: it holds the database(s) {', '.join(schemas)}; the seed "
                              "would replace the ones the source also has and leave the rest beside them",
                              hint="point target at an empty server, drop them, or pass --allow-nonempty-target "
                                   "if they are meant to be there")
        if now.phase == "new":
            phase.write(state, phase.Phase("seeding"), why="migrate start")

    return check


def _replicating(ctx) -> None:
    phase.write(ctx.state, phase.Phase("replicating"), why="migrate start done")


def run(m: Migration, *, allow_nonempty_target: bool = False, rehearsal: bool = False) -> RunResult:
    """`rehearsal`: the seed of the rehearsal server, which leaves the source's heartbeat event alone."""
    refuse_impossible(m)
    runner = Runner(m.store, "start", start_steps.steps(m, heartbeat_event=not rehearsal), rollback_on_failure=False,
                    guard=guard(m, allow_nonempty_target), on_done=_replicating,
                    resume_hint="fix the cause, then rerun `migrate start`: it resumes from the step that failed")
    try:
        result = runner.run()
    finally:
        m.close()
    report.write_report(m.pb.run_dir, workflow="start", run=result.as_dict(), probe=None, facts=_facts(m))
    return result


def _facts(m: Migration) -> dict:
    """What the seed carried and skipped, and why: the report's answer to "what exactly is on the target"."""
    data = m.store.load_state().get("data", {})
    seed = data.get("seed", {})
    accounts = data.get("accounts", {})
    return {
        "seed": {k: seed.get(k) for k in ("tool", "consistency", "file", "pos", "gtid", "seconds", "dump_bytes")},
        "schemas copied": seed.get("schemas"),
        "accounts carried": accounts.get("carried"),
        "accounts skipped (why)": [f"{x['account']}: {x['why']}" for x in accounts.get("skipped", [])],
        "service accounts never carried": "rdsadmin, rdsrepladmin, mysql.sys, mariadb.sys, root and the like",
        "events kept disabled until promotion": seed.get("enabled_events"),
        "replication": data.get("replication", {}).get("how"),
    }
