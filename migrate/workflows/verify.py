"""`migrate verify`: chunked checksums of every carried table, the replica against its primary, each chunk at a
consistent point (the argument is in `capabilities/verify/compare.py`). Changes nothing on either server.

Before the cutover the target is compared with the source; after it (the source following the target by reverse
replication) the source with the target. A run killed in its middle resumes its attempt from the last chunk
journaled, unless something that changes the data's story (a `start`, a cutover or a rollback) ran since it
began, or the tables asked for differ: then a new attempt starts from the beginning.

A finished full verify with no difference is recorded in the run state (`data.verify`); with
`cutover.require_verify: true` the cutover's gates ask for one newer than the last `start` and the last rollback
(`require_clean`).
"""

from __future__ import annotations

from typing import Any

from migrate.capabilities import phase, report
from migrate.capabilities.migration import Migration
from migrate.capabilities.verify import result as verify_result
from migrate.errors import Refused
from migrate.runner import Runner, RunResult
from migrate.runner.runner import RESUMABLE
from migrate.runner.store import now_iso
from migrate.steps import verify as verify_steps
from migrate.steps.verify import CHUNK_EVENT, Job

WORKFLOW = "verify"
FORWARD_PHASES = ("replicating", "rolled_back")  # the target follows the source
# A resumed verify must not mix chunks compared before one of these began with chunks compared after it.
DATA_CHANGING = ("start", "cutover", "rollback")
# Verify pauses while the replica is further behind than this (or cutover.max_lag_s, if larger): far enough that
# an ordinary write burst does not stop it, near enough that its reads never leave the replica minutes behind.
PAUSE_LAG_S = 5.0


def roles(now: phase.Phase, playbook: str) -> tuple[str, str]:
    """(primary, replica) in this phase, or refused with what to run instead."""
    if now.phase in FORWARD_PHASES:
        return "source", "target"
    if now.phase == "cut_over":
        return "target", "source"
    if now.phase in ("new", "seeding"):
        raise Refused(f"nothing to verify yet: {phase.sentence(now)}",
                      hint=f"run `migrate start -p {playbook}` first; verify compares the target once it replicates")
    raise Refused(f"`migrate verify` refused: {phase.sentence(now)}",
                  hint=f"finish it first: `migrate {now.workflow} -p {playbook}`")


def guard(m: Migration, job: Job):
    """Under the run lock: the phase still gives the same roles; an attempt that cannot be resumed is set aside."""

    def check(state: dict[str, Any]) -> None:
        if roles(phase.read(state), m.path) != (job.primary, job.replica):
            raise Refused("the migration's phase changed while verify started", hint="run `migrate verify` again")
        run = state.get("runs", {}).get(WORKFLOW)
        if run and run.get("status") in RESUMABLE and (why := _stale(state, run, job)):
            run["status"] = "superseded"
            run["superseded_because"] = why

    return check


def _stale(state: dict[str, Any], run: dict[str, Any], job: Job) -> str | None:
    facts = run.get("facts", {})
    began = facts.get("attempt_started_at")
    if not began:
        return None  # it died before its inventory: nothing of it to keep anyway
    if facts.get("selection", []) != list(job.selection or []):
        return "other tables were asked for"
    if (facts.get("primary"), facts.get("replica")) != (job.primary, job.replica):
        return "the servers' roles changed"
    for other in DATA_CHANGING:
        started = state.get("runs", {}).get(other, {}).get("started_at")
        if started and started > began:
            return f"`migrate {other}` ran after it began"
    return None


def run(m: Migration, *, tables: list[str] | None = None) -> dict[str, Any]:
    """Verify, resuming an attempt that died; the result's keys are `capabilities/verify/result.py`'s."""
    primary, replica = roles(phase.read(m.store.load_state()), m.path)
    job = Job(primary, replica, tuple(sorted(set(tables))) if tables else None,
              max_lag_s=max(PAUSE_LAG_S, float(m.pb.cutover.max_lag_s)))
    summary: dict[str, Any] = {}

    def finished(ctx) -> None:
        summary.update(verify_result.summarize(ctx.recorded(CHUNK_EVENT), ctx.facts))
        ctx.data["verify"] = {"attempt": ctx.attempt, "run_id": ctx.run_id,
                              "started_at": ctx.facts["attempt_started_at"], "finished_at": now_iso(),
                              "clean": summary["clean"], "full": summary["full"], "primary": primary,
                              "replica": replica, "differences": len(summary["differences"]),
                              "unverified": len(summary["unverified"]), "rows": summary["totals"]["rows"]}
        ctx.record("verify_result", clean=summary["clean"], sentence=verify_result.sentence(summary),
                   differences=summary["differences"], unverified=summary["unverified"], totals=summary["totals"])

    runner = Runner(m.store, WORKFLOW, verify_steps.steps(m, job), rollback_on_failure=False,
                    guard=guard(m, job), on_done=finished,
                    resume_hint=f"fix the cause, then rerun `migrate verify -p {m.path}`: it goes on from the last "
                                "chunk compared")
    try:
        outcome: RunResult = runner.run()
    finally:
        m.close()
    said = verify_result.sentence(summary)
    json_path, _ = report.write_report(m.pb.run_dir, workflow=WORKFLOW, run=outcome.as_dict(), probe=None,
                                       facts={"compared": said, "primary": primary, "replica": replica,
                                              "tables asked for": list(job.selection) if job.selection else "all"},
                                       verify=summary)
    return {"workflow": WORKFLOW, "run_id": outcome.run_id, "attempt": outcome.attempt, "status": outcome.status,
            **summary, "summary": said, "report": str(json_path), "run": outcome.as_dict()}


def require_clean(m: Migration) -> None:
    """The cutover's gate with `cutover.require_verify: true`: a finished, full verify of the target against the
    source found no difference, and began after the last `start` and the last rollback. Refused otherwise."""
    state = m.store.load_state()
    last = state.get("data", {}).get("verify")
    hint = (f"run `migrate verify -p {m.path}` (it changes nothing) and, once it reports no difference, the "
            "cutover again")
    if not last or last.get("primary") != "source":
        raise Refused("cutover.require_verify is on and no verify of the target against the source has finished",
                      hint=hint)
    if not last.get("full"):
        raise Refused("cutover.require_verify is on and the last verify compared only some tables (--tables)",
                      hint=hint)
    if not last.get("clean"):
        raise Refused(f"cutover.require_verify is on and the last verify (run {last.get('run_id')}, finished "
                      f"{last.get('finished_at')}) found {last.get('differences')} difference(s) and "
                      f"{last.get('unverified')} unconfirmed chunk(s)",
                      hint=f"see `migrate report -p {m.path}` and runbook.md (\"When verify finds a difference\"); "
                           f"fix the target, then {hint}")
    for other in ("start", "rollback"):
        started = state.get("runs", {}).get(other, {}).get("started_at")
        if started and started > last["started_at"]:
            raise Refused(f"cutover.require_verify is on and the last clean verify began before the last "
                          f"`migrate {other}` ({started})", hint=hint)
