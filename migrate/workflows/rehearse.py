"""`migrate rehearse`: the fire drill. The cutover's own steps with rehearsal roles, timed for real while
production keeps serving:

    rehearse  source -> rehearsal  write block on a drill account only, `rehearsal.repoint`, no reverse replication

Every rehearse is a new drill: it re-seeds the rehearsal server, so one that died in its middle is simply run
again (what it left — a revoked drill account, the rehearsal's endpoint on the rehearsal server — is reset by the
next one). Its report predicts the real cutover's write downtime (prediction.py) and proves production untouched.
"""

from __future__ import annotations

import secrets
import shutil
import time
import uuid
from typing import Any

from pydantic import SecretStr

from migrate import log
from migrate.capabilities import inspector, phase, prediction, report, write_block
from migrate.capabilities.migration import Migration
from migrate.capabilities.probe import Probe
from migrate.capabilities.repoint import for_migration
from migrate.capabilities.switch import AppEndpoint, Switch
from migrate.capabilities.write_block import revoke_and_kill
from migrate.errors import MigrateError, Refused
from migrate.playbook import Target
from migrate.runner import Runner, RunResult
from migrate.runner.store import command_line, now_iso
from migrate.steps import rehearse as rehearse_steps
from migrate.steps import switch as switch_steps
from migrate.workflows import start
from migrate.workflows import switch as switch_workflow

WORKFLOW = "rehearse"
READY_PHASES = ("replicating", "rolled_back")  # the target replicates from the source: before the cutover


def build(m: Migration, app: AppEndpoint, probe: Probe | None) -> Switch:
    r, c = m.rehearsal, m.pb.cutover
    source, rehearsal = m.server("source"), m.server("rehearsal")
    # The drill's block: the drill account's grants revoked and its sessions killed, whatever the cutover's method
    # (production's read_only or parameter group are never touched); the rehearsal server is made writable as the
    # target would be.
    return Switch(
        workflow=WORKFLOW, old=source, new=rehearsal, new_from_old=m.forward_link,
        blocker=write_block.RevokeAndKill(source, [r.drill_user], c.timeout_s),
        promoter=switch_workflow.blocker(m, rehearsal, [r.drill_user]),
        old_from_new=m.forward_link, app_users=[r.drill_user], app=app, repointer=for_migration(m.pb, r.repoint),
        max_lag_s=c.max_lag_s, stable_for_s=c.stable_for_s, timeout_s=c.timeout_s, follow_after=False,
        events=list(m.store.load_state().get("data", {}).get("seed", {}).get("enabled_events", [])),
        probe_gate=probe.gate if probe else None)


def drill_endpoint(m: Migration, password: str) -> AppEndpoint:
    """The drill's probe: the drill account, through the rehearsal's endpoint (or following its repoint)."""
    r = m.rehearsal
    fixed = (r.probe_host, r.probe_port or m.source_address[1]) if r.probe_host else None
    return AppEndpoint(r.drill_user, lambda: SecretStr(password), fixed=fixed, points_at=m.server("source"))


def steps(m: Migration, sw: Switch, drill: rehearse_steps.DrillAccount) -> list:
    cutover_repointer = for_migration(m.pb)
    cutover_blocker = switch_workflow.blocker(m, m.server("source"))
    return [rehearse_steps.RealBlockAllowed(m, sw, cutover_repointer, cutover_blocker),
            rehearse_steps.SeedRehearsal(m, sw, lambda: seed_by_dump(m)), drill, *switch_steps.steps(sw),
            rehearse_steps.ProductionUntouched(m, sw, switch_workflow.app_endpoint(m, "source"), cutover_repointer),
            rehearse_steps.Cleanup(m, sw, drill)]


def as_target(m: Migration) -> Migration:
    """The migration with the rehearsal server in the target's role, under a name (and state) of its own:
    `start`'s steps then seed it from the source exactly as they seed the target."""
    pb, r = m.pb, m.rehearsal
    target = Target(**{k: getattr(r, k) for k in Target.model_fields})
    sub = pb.model_copy(update={"name": f"{pb.name}-rehearsal", "target": target, "rehearsal": None,
                                "seed": pb.seed.model_copy(update={"method": "dump"})})
    return Migration(sub, path=m.path)


def seed_by_dump(m: Migration) -> str:
    """`rehearsal.seed: dump`: a new `start` of the rehearsal server on every rehearse (its earlier state
    dropped: the seed replaces the schemas it copies)."""
    sub = as_target(m)
    shutil.rmtree(sub.pb.run_dir, ignore_errors=True)
    result = start.run(sub, allow_nonempty_target=True, rehearsal=True)
    seeded = next((s.message for s in result.steps if s.name == "seed"), "")
    return (f"rehearsal server seeded from the source by `start`'s steps in {result.duration_s:.1f} s "
            f"({seeded}); it replicates from the source, read_only")


def plan(m: Migration) -> list[dict[str, Any]]:
    """The drill's ordered steps with what each would do (--dry-run)."""
    app = drill_endpoint(m, "")
    sw = build(m, app, None)
    sw.probe_gate = lambda window: None
    drill = rehearse_steps.DrillAccount(m, sw, "", lambda: None)
    return [{"step": s.name, "does": s.describe(), "timeout_s": s.timeout_s,
             "point_of_no_return": s.point_of_no_return} for s in steps(m, sw, drill)]


def run(m: Migration) -> dict[str, Any]:
    m.rehearsal  # noqa: B018 - refuses a playbook without a rehearsal: section, before anything
    try:
        with m.store.locked(command_line()):
            now = phase.read(m.store.load_state())
            if now.phase not in READY_PHASES:
                raise Refused(f"a rehearsal runs while the target replicates from the source, before the cutover; "
                              f"now: {phase.sentence(now)}",
                              hint=f"`migrate status -p {m.path}` says where the migration stands")
            return _drill(m)
    finally:
        m.close()


def _new_attempt(state: dict[str, Any]) -> None:
    """An earlier drill that died is not resumed: this one seeds again and resets what it left."""
    previous = state.get("runs", {}).get(WORKFLOW)
    if previous and previous.get("status") not in ("done", "rolled_back", "refused", "abandoned"):
        previous["status"] = "abandoned"
        previous["abandoned_at"] = now_iso()


def _drill(m: Migration) -> dict[str, Any]:
    password = secrets.token_urlsafe(18)  # the drill account's: in memory only, the account dropped afterwards
    app = drill_endpoint(m, password)
    probe = Probe(app, rate=m.pb.probe.rate, run_id=uuid.uuid4().hex[:12])
    sw = build(m, app, probe)
    drill = rehearse_steps.DrillAccount(m, sw, password, probe.start)
    again = f"fix the cause, then run `migrate rehearse -p {m.path}` again: it seeds a fresh rehearsal server"
    runner = Runner(m.store, WORKFLOW, steps(m, sw, drill), rollback_on_failure=True, linear=True,
                    guard=_new_attempt, resume_hint=again,
                    past_no_return_hint="the drill had switched its own endpoint when this failed; if the message "
                                        "names production (the application's endpoint or grants, the target), act on "
                                        f"it now; otherwise {again}")
    error: MigrateError | None = None
    result: RunResult | None = None
    counts = {}
    try:
        result = runner.run()
    except MigrateError as exc:
        error = exc
    finally:
        probe_result = probe.stop(max_wait_s=30 if result is not None else 10) if probe.started else None
        if result is None:
            _drop_quietly(drill)
        counts = _production_counts(m)
        drill.close()
    if probe_result is not None:
        probe_result = Probe.verify_on(probe_result, sw.app.points_at)
    sw.close()
    record = m.store.load_state().get("runs", {}).get(WORKFLOW, {})
    facts = record.get("facts", {})
    run_dict = result.as_dict() if result else switch_workflow.failed_run(record, runner)
    predicted = None
    if result is not None and probe_result is not None:
        predicted = prediction.predict(
            drill_gap_ms=probe_result.max_gap_ms, block=facts.get("block_timing", {}),
            app_grants=counts.get("grants"), app_sessions=facts.get("drill", {}).get("app_sessions", 0),
            drill_repoint=m.rehearsal.repoint.method, cutover_repoint=m.pb.cutover.repoint.method,
            cutover_block=m.pb.cutover.write_block)
    json_path, _ = report.write_report(
        m.pb.run_dir, workflow=WORKFLOW, run=run_dict, probe=probe_result.as_dict() if probe_result else None,
        facts=_facts(m, sw, facts, counts), prediction=predicted, blocked=facts.get("blocked_at") is not None,
        probe_times=(probe_result.ack_walls, probe_result.failure_walls) if probe_result else ([], []))
    data = report.load_report(json_path.parent)
    summary = report.summary(data)
    if error is not None:
        error.message += f"\n  {summary}"
        raise error
    return {"report": data, "summary": summary, "report_path": str(json_path), "prediction": predicted}


def _drop_quietly(drill: rehearse_steps.DrillAccount) -> None:
    try:
        drill.drop()
    except MigrateError as exc:
        log.get().warning("the drill account was not dropped; the next rehearse drops it", reason=exc.message)


def _production_counts(m: Migration) -> dict[str, Any]:
    """What the real block would revoke and kill, counted on the source (read-only)."""
    users = switch_workflow.blocked_users(m)
    try:
        with m.source() as s:
            grants = len(revoke_and_kill.revocable(s, inspector.accounts_of(s, users)))
            sessions = len(write_block.sessions_of(s, m.pb.cutover.app_users))
    except MigrateError as exc:
        log.get().warning("the application's grants could not be counted", reason=exc.message)
        return {"grants": None, "sessions": None, "counted_at": time.time()}
    return {"grants": grants, "sessions": sessions}


def _facts(m: Migration, sw: Switch, facts: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    r = m.rehearsal
    return {"old primary": str(sw.old), "new primary (rehearsal)": str(sw.new),
            "drill account": f"{r.drill_user}@% (dropped afterwards)",
            "drill probe endpoint": sw.app.describe(), "rehearsal repoint": r.repoint.method,
            "cutover repoint": m.pb.cutover.repoint.method, "cutover write_block": m.pb.cutover.write_block,
            "application accounts blocked at the cutover": switch_workflow.blocked_users(m),
            "their grants and sessions on the source after the drill": counts,
            "write block timing": facts.get("block_timing"), "drill sessions": facts.get("drill"),
            "rehearsal seed": facts.get("rehearsal_seed"), "final_position": facts.get("final"),
            "teardown": r.teardown, "lag at the gates": facts.get("lag_at_gates")}
