"""Crash safety as a matrix, generated from the step lists (a new step is covered without editing this file):
a real `migrate cutover --yes` / `migrate rollback --yes` under application load is SIGKILLed at the start and
in the middle of every step (the runner's test hold point), then the same command is run again, or, before
the point of no return, the opposite one. It must end done, or undone, with the application writing on one
server, the other one following it, and no acknowledged write lost. Killed in the middle of its repoint
(the application already moved), the switch can no longer be undone: the opposite command refuses and
the same one finishes it.
"""

from __future__ import annotations

import pytest

from migrate.capabilities.migration import Migration
from migrate.playbook import parse
from migrate.workflows import switch
from tests.killing import OPPOSITE, Case, kill_then_recover
from tests.switching import fast_playbook, started_sandbox

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


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_switch_killed_at_any_step_ends_done_or_undone_with_nothing_lost(sb, tmp_path, case: Case):
    kill_then_recover(sb, fast_playbook(sb, tmp_path, hooks={"before_cutover": HOOK}), case)
