"""The runner's contract, on real files: order, persistence, resume, rollback, timeouts, the lock."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from migrate import log
from migrate.adapters.db import DatabaseError
from migrate.errors import ExitCode, LockHeld, RolledBack, StepFailed
from migrate.runner import RunContext, Runner, Step, Store


class FileStep(Step):
    """A step whose effect is a file: `done()` looks at the file, not at the journal."""

    timeout_s = 5.0

    def __init__(self, name: str, world: Path, calls: list[str], *, fail: bool = False, sleep: float = 0,
                 undo_fails: bool = False, point_of_no_return: bool = False):
        self.name = name
        self.path = world / name
        self.calls = calls
        self.fail = fail
        self.sleep = sleep
        self.undo_fails = undo_fails
        self.point_of_no_return = point_of_no_return

    def describe(self) -> str:
        return f"create {self.name}"

    def done(self, ctx: RunContext) -> bool:
        return self.path.exists()

    def run(self, ctx: RunContext) -> str:
        self.calls.append(f"run {self.name}")
        if self.sleep:
            ctx.on_cancel(lambda: self.calls.append(f"cancel {self.name}"))
            ctx.cancelled.wait(self.sleep)
            if ctx.cancelled.is_set():
                raise RuntimeError("cancelled")
        if self.fail:
            raise RuntimeError(f"{self.name} broke")
        self.path.write_text("x")
        return f"{self.name} created because the test asked"

    def rollback(self, ctx: RunContext) -> str | None:
        self.calls.append(f"undo {self.name}")
        if self.undo_fails:
            raise RuntimeError(f"cannot undo {self.name}")
        if self.path.exists():
            self.path.unlink()
            return f"{self.name} removed"
        return None


@pytest.fixture
def world(tmp_path) -> Path:
    (tmp_path / "world").mkdir()
    return tmp_path / "world"


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "run")


def events(store: Store) -> list[tuple[str, str | None]]:
    return [(e["event"], e.get("step")) for e in store.read_journal()]


def test_steps_run_in_order_and_each_is_persisted_and_journaled_with_its_duration(world, store):
    calls: list[str] = []
    result = Runner(store, "demo", [FileStep("a", world, calls), FileStep("b", world, calls)],
                    rollback_on_failure=False).run()
    assert calls == ["run a", "run b"] and result.status == "done"
    state = json.loads(store.state_path.read_text())
    assert state["runs"]["demo"]["status"] == "done"
    assert state["runs"]["demo"]["steps"]["b"]["message"] == "b created because the test asked"
    done = [e for e in store.read_journal() if e["event"] == "step_done"]
    assert [e["step"] for e in done] == ["a", "b"] and all("duration_s" in e and "ts" in e for e in done)


def test_run_directory_is_private(world, store):
    Runner(store, "demo", [FileStep("a", world, [])], rollback_on_failure=False).run()
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    for path in (store.state_path, store.journal_path, store.lock_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_step_found_done_on_the_servers_is_skipped_even_if_the_state_never_said_so(world, store):
    (world / "a").write_text("done by a run that crashed before saving")
    calls: list[str] = []
    Runner(store, "demo", [FileStep("a", world, calls), FileStep("b", world, calls)], rollback_on_failure=False).run()
    assert calls == ["run b"]
    assert ("step_skipped", "a") in events(store)


def test_a_step_the_state_calls_done_but_the_world_lost_runs_again(world, store):
    calls: list[str] = []
    steps = [FileStep("a", world, calls)]
    Runner(store, "demo", steps, rollback_on_failure=False).run()
    (world / "a").unlink()
    Runner(store, "demo", steps, rollback_on_failure=False).run()
    assert calls == ["run a", "run a"]


def test_without_rollback_a_failure_stops_and_the_rerun_resumes_from_that_step(world, store):
    calls: list[str] = []
    with pytest.raises(StepFailed) as exc:
        Runner(store, "start", [FileStep("a", world, calls), FileStep("b", world, calls, fail=True),
                                FileStep("c", world, calls)], rollback_on_failure=False).run()
    assert exc.value.exit_code == ExitCode.NEEDS_HUMAN and "b broke" in str(exc.value)
    assert "rerun `migrate start`" in str(exc.value)
    calls.clear()
    Runner(store, "start", [FileStep("a", world, calls), FileStep("b", world, calls),
                            FileStep("c", world, calls)], rollback_on_failure=False).run()
    assert calls == ["run b", "run c"]
    state = json.loads(store.state_path.read_text())
    assert state["runs"]["start"]["steps"]["b"]["attempts"] == 2


def test_a_failure_before_the_point_of_no_return_rolls_back_newest_first(world, store):
    calls: list[str] = []
    steps = [FileStep("a", world, calls), FileStep("b", world, calls), FileStep("c", world, calls, fail=True),
             FileStep("d", world, calls, point_of_no_return=True)]
    with pytest.raises(RolledBack) as exc:
        Runner(store, "cutover", steps, rollback_on_failure=True).run()
    assert exc.value.exit_code == ExitCode.ROLLED_BACK
    assert calls == ["run a", "run b", "run c", "undo c", "undo b", "undo a"]
    assert not any(world.iterdir())
    assert ("rollback_done", "a") in events(store) and events(store)[-1] == ("run_rolled_back", None)


def test_a_rollback_that_cannot_undo_a_step_says_so_and_needs_a_human(world, store):
    calls: list[str] = []
    steps = [FileStep("a", world, calls, undo_fails=True), FileStep("b", world, calls, fail=True)]
    with pytest.raises(StepFailed) as exc:
        Runner(store, "cutover", steps, rollback_on_failure=True).run()
    assert exc.value.exit_code == ExitCode.NEEDS_HUMAN and "rollback did not complete" in str(exc.value)
    assert ("rollback_failed", "a") in events(store)


class FlakyUndo(FileStep):
    """A step whose server does not answer its rollback the first `misses` times."""

    def __init__(self, *args, misses: int, **kw):
        super().__init__(*args, **kw)
        self.misses = misses

    def rollback(self, ctx: RunContext) -> str | None:
        if self.misses:
            self.misses -= 1
            self.calls.append(f"undo {self.name} missed")
            raise DatabaseError("source: connect failed: (2013) Lost connection", code=2013)
        return super().rollback(ctx)


@pytest.mark.parametrize("retry_s, undone", [(5.0, True), (0.0, False)])
def test_a_rollback_whose_server_does_not_answer_is_tried_again_within_its_bound(world, store, retry_s, undone):
    calls: list[str] = []
    flaky = FlakyUndo("a", world, calls, misses=2)
    flaky.rollback_retry_s = retry_s
    steps = [flaky, FileStep("b", world, calls, fail=True)]
    with pytest.raises(RolledBack if undone else StepFailed):
        Runner(store, "cutover", steps, rollback_on_failure=True).run()
    assert (("rollback_done", "a") in events(store)) == undone
    assert (("rollback_failed", "a") in events(store)) == (not undone)
    assert calls.count("undo a missed") == (2 if undone else 1)
    assert not (world / "a").exists() if undone else (world / "a").exists()


def test_after_the_point_of_no_return_a_failure_is_not_rolled_back(world, store):
    calls: list[str] = []
    steps = [FileStep("a", world, calls), FileStep("repoint", world, calls, point_of_no_return=True),
             FileStep("check", world, calls, fail=True)]
    with pytest.raises(StepFailed) as exc:
        Runner(store, "cutover", steps, rollback_on_failure=True).run()
    assert "after the point of no return (repoint)" in str(exc.value)
    assert not [c for c in calls if c.startswith("undo")]


def test_a_step_past_its_timeout_is_cancelled_and_fails(world, store):
    calls: list[str] = []
    slow = FileStep("slow", world, calls, sleep=30)
    slow.timeout_s = 0.5
    started = time.monotonic()
    with pytest.raises(StepFailed) as exc:
        Runner(store, "demo", [slow], rollback_on_failure=False).run()
    assert time.monotonic() - started < 5
    assert "did not finish within its timeout of 0.5 s" in str(exc.value)
    assert "cancel slow" in calls


def test_a_secret_never_reaches_state_or_journal(world, store):
    log.register_secret("hunter2-very-secret")

    class Leaky(FileStep):
        def run(self, ctx):
            ctx.data["note"] = "password is hunter2-very-secret"
            ctx.data["replication_password"] = "anything"
            return "used hunter2-very-secret"

    Runner(store, "demo", [Leaky("a", world, [])], rollback_on_failure=False).run()
    for path in (store.state_path, store.journal_path):
        text = path.read_text()
        assert "hunter2-very-secret" not in text and "anything" not in text


def test_a_second_concurrent_run_is_refused_naming_the_holder(store):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from migrate.runner import Store; s = Store(sys.argv[1]); "
        "s.acquire('migrate cutover -p orders.yml'); print('held', flush=True); time.sleep(60)"),
        str(store.dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld) as exc:
            Runner(store, "cutover", [], rollback_on_failure=True).run()
        assert f"pid {holder.pid}" in str(exc.value) and "migrate cutover -p orders.yml" in str(exc.value)
    finally:
        holder.kill()
        holder.wait()
    Runner(store, "cutover", [], rollback_on_failure=True).run()  # the kernel freed the dead holder's lock


def test_ctrl_c_during_a_step_rolls_back(world, store):
    calls: list[str] = []

    class Interrupted(FileStep):
        def run(self, ctx):
            os.kill(os.getpid(), 2)  # SIGINT, as Ctrl-C delivers it, to the main thread
            time.sleep(1)
            return "never"

    with pytest.raises(RolledBack):
        Runner(store, "cutover", [FileStep("a", world, calls), Interrupted("b", world, calls)],
               rollback_on_failure=True).run()
    assert "undo a" in calls
    failed = [e for e in store.read_journal() if e["event"] == "step_failed"]
    assert failed[0]["error"].startswith("interrupted")
