"""What each command may do in each phase of the migration, and the record kept of it."""

from __future__ import annotations

import pytest

from migrate.capabilities import phase
from migrate.capabilities.phase import Phase
from migrate.errors import Refused

PB = "pb.yml"


@pytest.mark.parametrize("name", ["new", "seeding", "replicating", "rolled_back"])
def test_start_may_run_while_the_source_is_the_primary(name):
    phase.check_start(Phase(name), PB)


def test_start_after_a_cutover_is_refused_pointing_at_rollback():
    with pytest.raises(Refused) as exc:
        phase.check_start(Phase("cut_over", "target", ["target"]), PB)
    assert "overwriting newer data" in exc.value.message and f"migrate rollback -p {PB}" in exc.value.hint


@pytest.mark.parametrize("name,workflow", [("cutting_over", "cutover"), ("rolling_back", "rollback")])
def test_start_in_the_middle_of_a_switch_is_refused_pointing_at_both_ways_out(name, workflow):
    with pytest.raises(Refused) as exc:
        phase.check_start(Phase(name, writable=[], workflow=workflow), PB)
    assert f"migrate {workflow} -p {PB}" in exc.value.hint and "undo it" in exc.value.hint


@pytest.mark.parametrize("now,workflow,action", [
    (Phase("replicating"), "cutover", "run"),
    (Phase("rolled_back"), "cutover", "run"),
    (Phase("cutting_over", "source", [], workflow="cutover"), "cutover", "run"),
    (Phase("cut_over", "target", ["target"]), "cutover", "already"),
    (Phase("cutting_over", "source", [], workflow="cutover"), "rollback", "undo"),
    (Phase("cut_over", "target", ["target"]), "rollback", "run"),
    (Phase("rolling_back", "target", [], workflow="rollback"), "rollback", "run"),
    (Phase("rolling_back", "target", [], workflow="rollback"), "cutover", "undo"),
    (Phase("rolled_back"), "rollback", "already"),
])
def test_what_a_switch_command_does_in_each_phase(now, workflow, action):
    assert phase.switch_action(now, workflow, PB) == action


@pytest.mark.parametrize("now,workflow,said", [
    (Phase("new"), "cutover", f"migrate start -p {PB}"),
    (Phase("seeding"), "cutover", f"migrate start -p {PB}"),
    (Phase("replicating"), "rollback", "nothing to roll back"),
    (Phase("cutting_over", "target", ["target"], workflow="cutover"), "rollback", f"migrate cutover -p {PB}"),
    (Phase("rolling_back", "source", ["source"], workflow="rollback"), "cutover", f"migrate rollback -p {PB}"),
])
def test_a_switch_command_that_does_not_fit_is_refused_with_the_one_that_does(now, workflow, said):
    with pytest.raises(Refused) as exc:
        phase.switch_action(now, workflow, PB)
    assert said in str(exc.value)


def test_the_record_says_when_writes_are_blocked_and_keeps_its_history():
    state: dict = {}
    phase.write(state, Phase("replicating"), why="start done")
    blocked = phase.update(state, "block", phase="cutting_over", writable=[], attempt="a1", workflow="cutover")
    assert blocked.writes_blocked and "WRITES ARE BLOCKED" in phase.sentence(blocked)
    done = phase.update(state, "done", phase="cut_over", app_on="target", writable=["target"])
    assert not done.writes_blocked and "writes on the target" in phase.sentence(done)
    assert [h["to"] for h in phase.read(state).history] == ["replicating", "cutting_over", "cut_over"]


@pytest.mark.parametrize("runs,expected", [
    ({}, "new"),
    ({"start": {"status": "running"}}, "seeding"),
    ({"start": {"status": "done"}}, "replicating"),
    ({"start": {"status": "done"}, "cutover": {"status": "failed"}}, "cutting_over"),
    ({"start": {"status": "done"}, "cutover": {"status": "done"}}, "cut_over"),
])
def test_a_state_written_before_the_record_existed_is_read_from_its_runs(runs, expected):
    assert phase.read({"runs": runs, "data": {}}).phase == expected
