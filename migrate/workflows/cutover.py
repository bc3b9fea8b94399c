"""`migrate cutover`: the timed switch, under the application-side probe, then the report.

The probe writes through the application endpoint for the whole run; its longest gap between
acknowledged writes is the write downtime the report gives, and every acknowledged write is looked for
on the server that ends up primary.
"""

from __future__ import annotations

import uuid
from typing import Any

from migrate import secrets
from migrate.adapters.db import Endpoint
from migrate.capabilities import hooks, report
from migrate.capabilities.probe import Probe
from migrate.capabilities.repoint import for_playbook
from migrate.errors import BadInput, MigrateError, NeedsHuman
from migrate.runner import Runner, RunResult
from migrate.steps import cutover as cutover_steps
from migrate.workflows.context import Migration


def plan(m: Migration) -> list[dict[str, Any]]:
    """The ordered steps with what each would do: --dry-run prints this and changes nothing."""
    steps = cutover_steps.steps(m, for_playbook(m.pb.cutover.repoint), lambda: None)  # nothing connects
    return [{"step": s.name, "does": s.describe(), "timeout_s": s.timeout_s,
             "point_of_no_return": s.point_of_no_return} for s in steps]


class AppEndpoint:
    """How the application reaches its database: the probe's configured endpoint, or, when none is set,
    wherever the cutover has pointed the application so far (source, then target)."""

    def __init__(self, m: Migration, user: str, password):
        self.m, self.user, self.password = m, user, password
        self.repointed = False

    def follow(self, repointed: bool) -> None:
        self.repointed = repointed

    def __call__(self) -> Endpoint:
        p = self.m.pb.probe
        if p.host:
            host, port = p.host, p.port or self.m.pb.source.port
        elif self.repointed:
            host, port = self.m.pb.target.host, self.m.pb.target.port
        else:
            host, port = self.m.source_address
        return Endpoint(host, port, self.user, self.password, label="application endpoint")


def app_endpoint(m: Migration) -> AppEndpoint:
    p = m.pb.probe
    user = p.user or (m.pb.cutover.app_users[0] if m.pb.cutover.app_users else None)
    if not user:
        raise BadInput("the probe needs an application account: set probe.user or cutover.app_users")
    if not p.has_password:
        raise BadInput(f"the probe connects as {user} and needs its password",
                       hint="set probe.password_env, probe.password_file or probe.password_secret")
    return AppEndpoint(m, user, secrets.resolve(p, what="probe.password", aws=m.pb.aws))


def run(m: Migration) -> dict[str, Any]:
    endpoint = app_endpoint(m)
    steps = cutover_steps.steps(m, for_playbook(m.pb.cutover.repoint), endpoint, on_repoint=endpoint.follow)
    runner = Runner(m.store, "cutover", steps, rollback_on_failure=True)
    probe = Probe(endpoint, rate=m.pb.probe.rate, run_id=uuid.uuid4().hex[:12]) if m.pb.probe.enabled else None
    if probe:
        probe.start()
    error: MigrateError | None = None
    result: RunResult | None = None
    try:
        result = runner.run()
    except MigrateError as exc:
        error = exc
    finally:
        probe_result = probe.stop() if probe else None
    primary = m.target if result is not None else m.source
    if probe_result is not None:
        with primary() as s:
            probe_result = probe.verify(probe_result, s)
    run_dict = result.as_dict() if result else _failed_run(m, runner)
    json_path, _ = report.write_report(m.pb.run_dir, workflow="cutover", run=run_dict,
                                       probe=probe_result.as_dict() if probe_result else None,
                                       facts=_facts(m))
    data = report.load_report(m.pb.run_dir)
    summary = report.summary(data)
    if error is not None:
        hooks.run(m, "on_failure", fatal=False, error=error.message[:500])
        m.close()
        error.message += f"\n  {summary}"
        raise error
    hooks.run(m, "after_cutover", fatal=False, report=str(json_path))
    m.close()
    if probe_result is not None and probe_result.lost_count:
        raise NeedsHuman(f"cutover done but {probe_result.lost_count} acknowledged write(s) are missing on the new "
                         f"primary: {summary}", hint=f"compare source and target; the report is {json_path}")
    return {"report": data, "summary": summary, "report_path": str(json_path)}


def _failed_run(m: Migration, runner: Runner) -> dict[str, Any]:
    state = m.store.load_state().get("runs", {}).get("cutover", {})
    steps = [{"name": n, "status": v.get("status"), "duration_s": v.get("duration_s", 0),
              "message": v.get("message", "")} for n, v in state.get("steps", {}).items()]
    return {"workflow": "cutover", "run_id": runner.run_id, "status": state.get("status", "failed"),
            "duration_s": sum(s["duration_s"] or 0 for s in steps), "steps": steps}


def _facts(m: Migration) -> dict[str, Any]:
    data = m.store.load_state().get("data", {})
    cut = data.get("cutover", {})
    return {"source": f"{m.source_address[0]}:{m.source_address[1]}",
            "target": f"{m.pb.target.host}:{m.pb.target.port}",
            "repoint": m.pb.cutover.repoint.method, "write_block": m.pb.cutover.write_block,
            "final_position": cut.get("final"), "seed": {k: v for k, v in data.get("seed", {}).items()
                                                          if k in ("tool", "file", "pos", "gtid", "seconds")},
            "reverse_replication": "not built yet: the old primary does not follow the new one",
            "probe_endpoint": f"{m.pb.probe.host}:{m.pb.probe.port}" if m.pb.probe.host else "follows the repoint"}
