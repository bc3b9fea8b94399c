"""Crash safety as a matrix, generated from the step lists (a new step is covered without editing this file):
a real `migrate cutover --yes` / `migrate rollback --yes` under application load is SIGKILLed at the start and
in the middle of every step (the runner's test hold point), then the same command is run again, or, before
the point of no return, the opposite one. It must end done, or undone, with the application writing on one
server, the other one following it, and no acknowledged write lost. Killed in the middle of its repoint
(the application already moved), the switch can no longer be undone: the opposite command refuses and
the same one finishes it.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import pytest

from migrate.capabilities import replication
from migrate.capabilities.migration import Migration
from migrate.playbook import parse
from migrate.workflows import switch
from tests.helpers import open_session, spawn_migrate, wait_for
from tests.switching import (
    Load,
    app_endpoint,
    fast_playbook,
    journal,
    migrate,
    missing_orders,
    phase_of,
    started_sandbox,
    to_phase,
)

OPPOSITE = {"cutover": "rollback", "rollback": "cutover"}
DONE = {"cutover": "cut_over", "rollback": "rolled_back"}
BEFORE = {"cutover": "replicating", "rollback": "cut_over"}
HOOK = "true"


def _step_list(workflow: str) -> list[tuple[str, bool]]:
    """(step, not after the point of no return) of the workflow, from its own plan (no server is needed): a
    switch killed up to its point of no return (included: the kill may land before the repoint took) can
    still be undone."""
    pb = parse(f"""
name: matrix
state_dir: /nonexistent/migrate-matrix
source: {{kind: mysql, host: 127.0.0.1, user: u, password_env: X}}
target: {{host: 127.0.0.2, user: u, password_env: X}}
replication: {{password_env: X}}
cutover: {{app_users: [app], repoint: {{method: haproxy, haproxy: {{socket: /nonexistent.sock}}}}}}
probe: {{password_env: X}}
hooks: {{before_cutover: "{HOOK}"}}
""")
    steps, before = [], True
    for s in switch.plan(Migration(pb), workflow):
        steps.append((s["step"], before))
        before = before and not s["point_of_no_return"]
    return steps


@dataclass(frozen=True)
class Case:
    workflow: str
    step: str
    point: str  # start | middle
    then: str  # the command run after the kill
    refused: bool = False  # `then` must refuse (the application already moved), and the same command finish


    def __str__(self) -> str:
        return f"{self.workflow}-{self.step}-{self.point}-then-{self.then}" + ("-refused" if self.refused else "")


def _cases() -> list[Case]:
    by_workflow = {}
    for workflow in ("cutover", "rollback"):
        cases = []
        for step, undoable in _step_list(workflow):
            cases += [Case(workflow, step, point, workflow) for point in ("start", "middle")]
            if undoable and step not in ("gates", "hook_before_cutover"):  # those changed nothing to undo
                cases.append(Case(workflow, step, "middle", OPPOSITE[workflow], refused=step == "repoint"))
            if undoable and step == "repoint":  # killed as it begins: the application has not moved yet
                cases.append(Case(workflow, step, "start", OPPOSITE[workflow]))
        by_workflow[workflow] = cases
    # Interleaved, so that each case mostly starts in the phase the one before left.
    out = []
    for a, b in zip(by_workflow["cutover"], by_workflow["rollback"], strict=False):
        out += [a, b]
    longer = max(by_workflow.values(), key=len)
    return out + longer[len(out) // 2:]


CASES = _cases()


@pytest.fixture(scope="module")
def sb():
    with started_sandbox() as made:
        yield made


def _killed_at(sb, playbook, case: Case) -> None:
    proc = spawn_migrate(case.workflow, "-p", str(playbook), "--yes",
                         env={"MIGRATE_TEST_HOLD": f"{case.workflow}:{case.step}:{case.point}"})
    try:
        def held() -> bool:
            assert proc.poll() is None, f"migrate {case.workflow} ended ({proc.returncode}) before {case}"
            return any(e["event"] == "held" and e.get("pid") == proc.pid for e in journal(sb)[-8:])

        wait_for(held, 90, str(case))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_switch_killed_at_any_step_ends_done_or_undone_with_nothing_lost(sb, tmp_path, case: Case):
    playbook = fast_playbook(sb, tmp_path, hooks={"before_cutover": HOOK})
    to_phase(sb, playbook, "replicating" if case.workflow == "cutover" else "cut_over")
    before = phase_of(sb).phase
    with Load(sb, rate=100) as load_:
        _killed_at(sb, playbook, case)
        if case.refused:
            said = migrate(case.then, "-p", str(playbook), "--yes", expect=1).stdout
            assert "undoing it would lose them" in said and f"migrate {case.workflow} -p" in said
        migrate(case.workflow if case.refused else case.then, "-p", str(playbook), "--yes")
        time.sleep(0.3)  # the application writes on whichever server it ends on
    now = phase_of(sb)
    undone = case.then != case.workflow and not case.refused
    assert now.phase == (before if undone else DONE[case.workflow]), now
    primary, replica = (sb.target, sb.source) if now.app_on == "target" else (sb.source, sb.target)
    assert not now.writes_blocked
    with open_session(app_endpoint(sb)) as app:
        assert app.value("SELECT @@port") == primary.port
        app.run("CALL shop.place_order(3, 'SKU-0003', 1, 300, @o)")
    with replica.root() as r:
        status = replication.read_status(r)
        assert status.healthy and status.source_port == primary.port, status
    with primary.root() as p:
        assert load_.result.acked_order_ids and missing_orders(p, load_.result.acked_order_ids) == []
