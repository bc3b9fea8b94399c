"""`migrate cutover` and `migrate rollback`: one switch with other roles, under the application-side probe.

    cutover   source -> target   then the source follows the target (reverse replication)
    rollback  target -> source   then the target follows the source again (forward replication)

Each command first reads the migration's phase, under the run lock, and does what fits: a new switch, the
rest of one that died, the undoing of the opposite one that died before its point of no return, or
nothing ("already cut over"). The probe writes through the application endpoint for the whole run; the
report's write downtime is its longest gap between acknowledged writes, and every acknowledged write is
looked for on the server the application points at when the run ends.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from migrate import secrets
from migrate.capabilities import heartbeat, hooks, phase, prediction, report, write_block
from migrate.capabilities.migration import Migration
from migrate.capabilities.probe import Probe
from migrate.capabilities.repoint import for_migration
from migrate.capabilities.switch import AppEndpoint, Server, Switch
from migrate.errors import BadInput, MigrateError, NeedsHuman, Refused
from migrate.runner import Runner, RunResult
from migrate.runner.runner import RESUMABLE, STARTED
from migrate.runner.store import command_line, wall_of
from migrate.steps import switch as switch_steps
from migrate.workflows import verify

OPPOSITE = {"cutover": "rollback", "rollback": "cutover"}
DONE_PHASE = {"cutover": "cut_over", "rollback": "rolled_back"}


def app_endpoint(m: Migration, points_at: str = "source") -> AppEndpoint:
    """The probe's account at the application endpoint: probe.host when set, else wherever the switch points."""
    p = m.pb.probe
    user = p.user or (m.pb.cutover.app_users[0] if m.pb.cutover.app_users else None)
    if not user:
        raise BadInput("the probe needs an application account: set probe.user or cutover.app_users")
    if not p.has_password:
        raise BadInput(f"the probe connects as {user} and needs its password",
                       hint="set probe.password_env, probe.password_file or probe.password_secret")
    fixed = (p.host, p.port or m.pb.source.port) if p.host else None
    return AppEndpoint(user, lambda: secrets.resolve(p, what="probe.password", aws=m.pb.aws), fixed=fixed,
                       points_at=m.server(points_at))


def blocked_users(m: Migration) -> list[str]:
    """Whose writes the block stops: the application's accounts, and the probe's, which stands for them."""
    users = list(m.pb.cutover.app_users)
    if m.pb.probe.enabled and m.pb.probe.user and m.pb.probe.user not in users:
        users.append(m.pb.probe.user)
    return users


def blocker(m: Migration, server: Server, users: list[str] | None = None) -> write_block.WriteBlocker:
    """The playbook's write block as `server` allows it (for the application's accounts, unless `users`)."""
    return write_block.for_server(m.pb.cutover.write_block, server, blocked_users(m) if users is None else users,
                                  m.pb.cutover.timeout_s, parameter_group=m.parameter_group_api)


def build(m: Migration, workflow: str, *, app_on: str = "source", probe: Probe | None = None,
          app: AppEndpoint | None = None) -> Switch:
    """The switch of `workflow` for this migration: who is old and new, and how each replicates from the other."""
    c = m.pb.cutover
    source, target = m.server("source"), m.server("target")
    forward = workflow == "cutover"
    before = m.pb.hooks.before_cutover if forward else None
    old, new = (source, target) if forward else (target, source)
    return Switch(
        workflow=workflow, old=old, new=new, blocker=blocker(m, old), promoter=blocker(m, new),
        new_from_old=m.forward_link if forward else m.reverse_link,
        old_from_new=m.reverse_link if forward else m.forward_link,
        app_users=blocked_users(m), app=app or app_endpoint(m, app_on), repointer=for_migration(m.pb),
        max_lag_s=c.max_lag_s, stable_for_s=c.stable_for_s, timeout_s=c.timeout_s,
        follow_after=c.reverse_replication or not forward,
        events=list(m.store.load_state().get("data", {}).get("seed", {}).get("enabled_events", [])),
        probe_gate=probe.gate if probe else None,
        before_hook=(lambda: hooks.run(m, "before_cutover", fatal=True)) if before else None,
        heartbeat_s=m.pb.heartbeat.interval_s,
        verify_gate=(lambda: verify.require_clean(m)) if forward and c.require_verify else None,
        heartbeat_event=("stop" if forward else "start") if m.pb.heartbeat.event else None)


def steps(m: Migration, sw: Switch) -> list:
    return switch_steps.steps(sw, hook=m.pb.hooks.before_cutover if sw.before_hook else None,
                              hook_timeout_s=hooks.HOOK_TIMEOUT_S)


def plan(m: Migration, workflow: str) -> list[dict[str, Any]]:
    """The ordered steps with what each would do: --dry-run prints this and changes nothing."""
    app = AppEndpoint(m.pb.probe.user or "(probe)", lambda: None, fixed=None, points_at=m.server("source"))
    sw = build(m, workflow, app=app, probe=None)
    sw.probe_gate = (lambda window: None) if m.pb.probe.enabled else None
    return [{"step": s.name, "does": s.describe(), "timeout_s": s.timeout_s,
             "point_of_no_return": s.point_of_no_return} for s in steps(m, sw)]


def run(m: Migration, workflow: str) -> dict[str, Any]:
    """Whatever `migrate cutover` / `migrate rollback` should do now, decided and done under the run lock."""
    try:
        with m.store.locked(command_line()), heartbeat.paused(m.pb.run_dir):  # no writer behind the switch's back
            state = m.store.load_state()
            now = phase.read(state)
            if workflow == "rollback" and now.phase in phase.READY["cutover"] and _changed_before_its_block(state, "cutover"):
                return _undo(m, "cutover")
            action = phase.switch_action(now, workflow, m.path)
            own_run = state.get("runs", {}).get(workflow, {}).get("status")
            if action == "already":
                return _already(m, workflow, now)
            if action == "undo":
                return _undo(m, OPPOSITE[workflow])
            if own_run == "rollback_failed":  # its own rollback did not complete: finish that first
                return _undo(m, workflow)
            return _switch(m, workflow, now)
    finally:
        m.close()


def _switch(m: Migration, workflow: str, now: phase.Phase) -> dict[str, Any]:
    app = app_endpoint(m, now.app_on)
    probe = Probe(app, rate=m.pb.probe.rate, run_id=uuid.uuid4().hex[:12]) if m.pb.probe.enabled else None
    sw = build(m, workflow, app=app, probe=probe)
    done_phase = DONE_PHASE[workflow]

    def finished(ctx) -> None:
        phase.update(ctx.state, f"{workflow} done", phase=done_phase, attempt=ctx.attempt, workflow=workflow,
                     app_on=sw.new.name, writable=[sw.new.name])

    runner = Runner(m.store, workflow, steps(m, sw), rollback_on_failure=True, linear=True, on_done=finished,
                    undo_hint=f"run `migrate {workflow} -p {m.path}` again: it finishes undoing it")
    started_wall = time.time()
    if probe:
        probe.start()
    error: MigrateError | None = None
    result: RunResult | None = None
    try:
        result = runner.run()
    except MigrateError as exc:
        error = exc
    finally:
        # A switch that failed may never see writes succeed again: do not wait long for them.
        probe_result = probe.stop(max_wait_s=30 if result is not None else 10) if probe else None
        sw.close()
    state = m.store.load_state()
    where = phase.read(state).app_on
    record = state.get("runs", {}).get(workflow, {})
    facts = record.get("facts", {})
    if probe_result is not None:
        probe_result = Probe.verify_on(probe_result, m.server(where))
    changed = result is not None or record.get("status") != "refused"
    run_dict = result.as_dict() if result else failed_run(record, runner)
    resumed = report.resumed_gap(facts.get("blocked_at"), facts.get("repointed_at"), started_wall,
                                 wall_of(probe_result.first_ack_at) if probe_result else None)
    probe_dict = probe_result.as_dict() if probe_result else None
    blocked = facts.get("blocked_at") is not None or resumed is not None
    rehearsed = report.latest_prediction(m.pb.run_dir) if workflow == "cutover" and blocked else None
    json_path, _ = report.write_report(m.pb.run_dir, workflow=workflow, run=run_dict, probe=probe_dict,
                                       facts=_facts(m, sw, facts, where), resumed_block=resumed, latest=changed,
                                       probe_times=(probe_result.ack_walls, probe_result.failure_walls)
                                       if probe_result else ([], []),
                                       prediction=prediction.compare(rehearsed, report.write_downtime(
                                           probe_dict, resumed)["longest_gap_ms"]) if rehearsed else None,
                                       blocked=blocked)
    data = report.load_report(json_path.parent)
    summary = report.summary(data)
    if error is not None:
        if workflow == "cutover":
            hooks.run(m, "on_failure", fatal=False, error=error.message[:500])
        error.message += f"\n  {summary}"
        raise error
    if workflow == "cutover":
        hooks.run(m, "after_cutover", fatal=False, report=str(json_path))
    if probe_result is not None and probe_result.lost_count:
        raise NeedsHuman(f"{workflow} done but {probe_result.lost_count} acknowledged write(s) are missing on "
                         f"the {where}, where the application points: {summary}",
                         hint=f"compare source and target; the report is {json_path}")
    return {"report": data, "summary": summary, "report_path": str(json_path)}


def _already(m: Migration, workflow: str, now: phase.Phase) -> dict[str, Any]:
    """Nothing to do: said plainly, nothing touched, the real report kept."""
    verb = {"cutover": "cut over", "rollback": "rolled back"}[workflow]
    try:
        data = report.load_report(m.pb.run_dir)
    except BadInput:
        data = None
    summary = (f"already {verb} at {now.since} (run {now.attempt}): {phase.sentence(now)}; nothing was touched"
               + (f"; report: {data['files']['markdown']}" if data else ""))
    return {"already": True, "phase": now.as_dict(), "summary": summary, "report": data}


def _undo(m: Migration, workflow: str) -> dict[str, Any]:
    """Undo the attempt of `workflow` that died (or failed to roll back) before its point of no return."""
    sw = build(m, workflow, app=app_endpoint(m, "source" if workflow == "cutover" else "target"))
    _refuse_undo_after_repoint(m, sw)
    runner = Runner(m.store, workflow, steps(m, sw), rollback_on_failure=True, linear=True,
                    undo_hint=f"fix what the journal names, then run `migrate {workflow} -p {m.path}` or "
                              f"`migrate {OPPOSITE[workflow]} -p {m.path}` again")
    try:
        result = runner.undo()
    finally:
        sw.close()
    now = phase.read(m.store.load_state())
    json_path, _ = report.write_report(m.pb.run_dir, workflow=f"{workflow}-undo", run=result.as_dict(), probe=None,
                                       facts={"undone": f"{workflow} run {result.attempt}", "now": phase.sentence(now)})
    data = report.load_report(json_path.parent)
    summary = (f"the {workflow} that stopped in its middle (run {result.attempt}) was undone: "
               f"{phase.sentence(now)}; report: {data['files']['markdown']}")
    return {"undone": workflow, "report": data, "summary": summary, "report_path": str(json_path)}


def _changed_before_its_block(state: dict[str, Any], workflow: str) -> bool:
    """The last run of `workflow` died or failed after a step before its block changed something (the heartbeat
    event stopped), with the phase record not yet changed: the opposite command undoes it, as after the block."""
    run = state.get("runs", {}).get(workflow, {})
    checks = (switch_steps.Gates.name, switch_steps.BeforeHook.name)
    return run.get("status") in RESUMABLE and any(
        name not in checks and step.get("status") in STARTED for name, step in run.get("steps", {}).items())


def _refuse_undo_after_repoint(m: Migration, sw: Switch) -> None:
    """A switch that died once the application may already reach the new primary is past its point of no
    return, whatever the record says (it died before writing it): writes may have landed there, and undoing
    it would lose them. Asked of the real repointer; when it cannot be read back, the repoint step must not
    have begun."""
    points = sw.repointer.points_to(*sw.new.address)
    began = m.store.load_state().get("runs", {}).get(sw.workflow, {}).get("steps", {}).get("repoint", {})
    if points or (points is None and began.get("status") in ("running", "done", "failed")):
        why = "points the application at" if points else "may already point the application at"
        raise Refused(f"the {sw.workflow} that stopped in its middle {why} {sw.new}: writes may have landed "
                      "there, and undoing it would lose them", hint=f"finish it: `migrate {sw.workflow} -p {m.path}`")


def failed_run(record: dict[str, Any], runner: Runner) -> dict[str, Any]:
    """A run that ended without a RunResult (refused, rolled back, failed), from its record: its steps in the
    workflow's order, with when each began (for the timeline)."""
    order = [s.name for s in runner.steps]
    names = sorted(record.get("steps", {}), key=lambda n: order.index(n) if n in order else len(order))
    steps = []
    for name in names:
        v = record["steps"][name]
        steps.append({"name": name, "status": v.get("status"), "duration_s": v.get("duration_s", 0),
                      "message": v.get("message", ""), **({"started_at": v["started_at"]} if v.get("started_at")
                                                           else {})})
    return {"workflow": runner.workflow, "run_id": runner.run_id, "attempt": record.get("attempt"),
            "status": record.get("status", "failed"),
            "duration_s": sum(s["duration_s"] or 0 for s in steps), "steps": steps}


def _facts(m: Migration, sw: Switch, facts: dict[str, Any], where: str) -> dict[str, Any]:
    data = m.store.load_state().get("data", {})
    follow = {"cutover": "reverse replication: the source follows the target",
              "rollback": "forward replication: the target follows the source again"}[sw.workflow]
    return {"old primary": str(sw.old), "new primary": str(sw.new), "application points at": where,
            "repoint": m.pb.cutover.repoint.method, "write_block": m.pb.cutover.write_block,
            "final_position": facts.get("final"), "new primary's position at promotion": facts.get("own_position"),
            "seed": {k: v for k, v in data.get("seed", {}).items() if k in ("tool", "file", "pos", "gtid", "seconds")},
            "after the switch": follow if sw.follow_after else
            "none: cutover.reverse_replication is off, the old primary does not follow the new one",
            "probe_endpoint": sw.app.describe(), "lag at the gates": facts.get("lag_at_gates")}
