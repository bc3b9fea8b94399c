"""Which verify the cutover's `require_verify` gate accepts, and when a verify that died is resumed or set aside,
decided from the run state alone (the servers' side: tests/integration/test_verify.py)."""

from __future__ import annotations

import json

import pytest

from migrate.capabilities.migration import Migration
from migrate.errors import Refused
from migrate.playbook import parse
from migrate.steps.verify import Job
from migrate.workflows import verify
from tests.unit.test_playbook import VALID

CLEAN = {"attempt": "a1", "run_id": "a1", "started_at": "2026-01-02T10:00:00.000Z",
         "finished_at": "2026-01-02T10:05:00.000Z", "clean": True, "full": True, "primary": "source",
         "replica": "target", "differences": 0, "unverified": 0}
JOB = Job("source", "target", None, 5.0)


def migration(tmp_path, state: dict) -> Migration:
    m = Migration(parse(VALID + f"state_dir: {tmp_path}\n"), path="pb.yml")
    m.store.dir.mkdir(parents=True, exist_ok=True)
    m.store.state_path.write_text(json.dumps(state))
    return m


def state(verify_record: dict | None, **runs: str) -> dict:
    return {"data": {"verify": verify_record} if verify_record else {},
            "runs": {name: {"status": "done", "started_at": at} for name, at in runs.items()}}


def test_a_clean_full_verify_newer_than_the_last_start_lets_the_cutover_through(tmp_path):
    verify.require_clean(migration(tmp_path, state(CLEAN, start="2026-01-02T09:00:00.000Z")))


@pytest.mark.parametrize("record, runs, says", [
    (None, {}, "no verify of the target against the source has finished"),
    ({**CLEAN, "full": False}, {}, "only some tables"),
    ({**CLEAN, "clean": False, "differences": 2}, {}, "found 2 difference(s)"),
    ({**CLEAN, "primary": "target"}, {}, "no verify of the target against the source"),
    (CLEAN, {"start": "2026-01-02T11:00:00.000Z"}, "before the last `migrate start`"),
    (CLEAN, {"rollback": "2026-01-02T11:00:00.000Z"}, "before the last `migrate rollback`"),
])
def test_the_gate_refuses_and_says_to_run_verify(tmp_path, record, runs, says):
    with pytest.raises(Refused) as refused:
        verify.require_clean(migration(tmp_path, state(record, **runs)))
    assert says in refused.value.message and "migrate verify -p pb.yml" in refused.value.hint


def test_a_verify_that_died_is_resumed_unless_its_story_changed():
    died = {"status": "failed", "facts": {"attempt_started_at": "2026-01-02T10:00:00.000Z", "selection": [],
                                          "primary": "source", "replica": "target"}}
    assert verify._stale({"runs": {}}, died, JOB) is None
    assert verify._stale({"runs": {"start": {"started_at": "2026-01-02T11:00:00.000Z"}}}, died, JOB) == \
        "`migrate start` ran after it began"
    assert verify._stale({"runs": {}}, died, Job("source", "target", ("shop.orders",), 5.0)) == \
        "other tables were asked for"
    assert verify._stale({"runs": {}}, died, Job("target", "source", None, 5.0)) == "the servers' roles changed"


def test_the_guard_sets_a_stale_attempt_aside_so_the_runner_starts_a_new_one(tmp_path):
    m = migration(tmp_path, {})
    st = {"data": {"phase": {"phase": "replicating"}},
          "runs": {"verify": {"status": "running", "facts": {"attempt_started_at": "2026-01-02T10:00:00.000Z",
                                                             "primary": "source", "replica": "target"}},
                   "cutover": {"status": "rolled_back", "started_at": "2026-01-02T12:00:00.000Z"}}}
    verify.guard(m, JOB)(st)
    assert st["runs"]["verify"]["status"] == "superseded"
    assert "cutover" in st["runs"]["verify"]["superseded_because"]
