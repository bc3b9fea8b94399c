"""The state machine: runs a workflow's steps in order, persists after each, journals every event,
resumes after a crash, rolls back before the point of no return.

A step is skipped only when `done()` confirms, on the servers, that its work is there; so a run that
crashed after doing the work but before saving the state neither repeats nor skips it.

An *attempt* is a workflow from its first run until it ends (done, refused, rolled back). A run after a
crash or a failure resumes the attempt: its steps' statuses and its facts (`ctx.facts`) carry over. A run
after an ended attempt starts a new one with no facts: a step never takes another attempt's result for
its own. In a `linear` workflow (the cutover) a step that a later step of the attempt has already
followed is not run again: the choreography only moves forward, or rolls back; and a new attempt of it
runs every step without asking done() first (a switch that has not begun has done nothing, and every
step may be repeated): the application waits for each question asked of a server there.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from migrate import log
from migrate.errors import MigrateError, Refused, RolledBack, StepFailed
from migrate.runner.progress import Progress
from migrate.runner.store import Store, command_line, iso_of, now_iso

CANCEL_GRACE_S = 10.0
ROLLBACK_RETRY_EVERY_S = 0.5
# Test instrumentation, inert unless set: "<workflow>:<step>:<start|middle>" makes a run journal `held` at
# that point (a step's start, or its first checkpoint) and wait there, so a test can SIGKILL it exactly there, or
# (with MIGRATE_TEST_HOLD_S, the seconds to wait) break the network under it and let it go on.
HOLD_ENV = "MIGRATE_TEST_HOLD"
HOLD_S_ENV = "MIGRATE_TEST_HOLD_S"
HOLD_S = 600.0


class StepTimeout(MigrateError):
    pass


class RunContext:
    """What a running step may touch besides its own collaborators: the run's small persisted data,
    progress reporting, and cancel hooks the runner calls when the step overruns its timeout."""

    def __init__(self, runner: Runner, data: dict[str, Any], facts: dict[str, Any]):
        self._runner = runner
        self.data = data  # the migration's data, persisted in state.json after every step; never a secret
        self.facts = facts  # this attempt's own facts (a final position, saved grants): gone with the attempt
        self._cancel_hooks: list[Callable[[], None]] = []
        self._progress = Progress()
        self.cancelled = threading.Event()
        self._checkpointed = False

    def save(self, *, durable: bool | None = None) -> None:
        """Persist `data` and `facts` now (for a value that must survive a crash in the middle of a step).

        In a linear workflow (a switch, while the application waits) this survives a killed process but
        skips the fsync, which a busy disk can make cost a hundred milliseconds, unless `durable=True`; see
        `Runner.save`."""
        self._runner.save(durable=not self._runner.linear if durable is None else durable)

    @property
    def state(self) -> dict[str, Any]:
        """The whole run state (its `data` holds the migration's phase record)."""
        return self._runner.state

    @property
    def attempt(self) -> str:
        return self._runner.attempt

    @property
    def run_id(self) -> str:
        return self._runner.run_id

    def checkpoint(self, what: str) -> None:
        """Say in the journal how far the step has come (what a human reads after a crash in its middle)."""
        self._runner._journal("step_progress", durable=False, step=self._runner.current, what=what)
        if not self._checkpointed:
            self._checkpointed = True
            self._runner.hold(self._runner.current, "middle")

    def record(self, event: str, **fields: Any) -> None:
        """Journal one event of the step's own work (a chunk verified), tagged with the attempt: a resumed run
        reads them back (`recorded`) to go on after the last one instead of doing it again."""
        self._runner._journal(event, durable=False, step=self._runner.current, attempt=self.attempt, **fields)

    def recorded(self, event: str) -> list[dict[str, Any]]:
        """The `record`ed events of this workflow's current attempt, oldest first."""
        return [e for e in self._runner.store.read_journal() if e.get("event") == event
                and e.get("workflow") == self._runner.workflow and e.get("attempt") == self.attempt]

    def on_cancel(self, hook: Callable[[], None]) -> None:
        self._cancel_hooks.append(hook)

    def cancel(self) -> None:
        self.cancelled.set()
        for hook in reversed(self._cancel_hooks):
            try:
                hook()
            except Exception as exc:  # noqa: BLE001 - cancelling must try every hook
                log.get().warning("cancel hook failed", error=str(exc))

    def progress(self, message: str, *, done: float | None = None, total: float | None = None,
                 unit: str = "", every_s: float = 2.0) -> dict[str, Any]:
        """Report progress on long work: a bar with ETA on a terminal, a log line every `every_s` otherwise."""
        return self._progress.update(message, done=done, total=total, unit=unit, every_s=every_s,
                                     step=self._runner.current)

    def end_progress(self) -> None:
        self._progress.close()


class Step(ABC):
    """One unit of a workflow. `run` returns the sentence saying what it did and why."""

    name: ClassVar[str]
    timeout_s: ClassVar[float] = 120.0
    point_of_no_return: ClassVar[bool] = False
    changes_nothing: ClassVar[bool] = False  # a check: a refusal by it, or before it, needs no rollback
    always_recheck: ClassVar[bool] = False  # linear workflows: done() still decides after later steps began
    persist_start: ClassVar[bool] = True  # False: nothing on a server to undo if it dies in its middle, so its
    # "running" is saved with what comes next (one write less while the application waits)
    rollback_retry_s: float = 0.0  # a rollback that failed on a server (MigrateError) is tried again this long

    @abstractmethod
    def describe(self) -> str:
        """What this step will do, for --dry-run and the plan."""

    @abstractmethod
    def done(self, ctx: RunContext) -> bool:
        """Whether the step's effect is in place, checked on the real servers."""

    @abstractmethod
    def run(self, ctx: RunContext) -> str: ...

    def rollback(self, ctx: RunContext) -> str | None:
        """Undo the step; a sentence of what was undone, or None when there is nothing to undo."""
        return None

    def skipped(self, ctx: RunContext) -> None:  # noqa: B027 - most steps keep no record of their own
        """Called when the step is found done instead of run: bring the run's record up to date."""


RESUMABLE = ("running", "failed", "rollback_failed")
STARTED = ("running", "done", "failed")


@dataclass
class StepOutcome:
    name: str
    status: str  # done | skipped | failed | rolled_back | not_run
    duration_s: float = 0.0
    message: str = ""
    error: BaseException | None = field(default=None, repr=False, compare=False)
    started_wall: float | None = None  # when it began (epoch s), for the report's timeline


@dataclass
class RunResult:
    workflow: str
    run_id: str
    status: str  # done | rolled_back
    steps: list[StepOutcome] = field(default_factory=list)
    duration_s: float = 0.0
    attempt: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"workflow": self.workflow, "run_id": self.run_id, "attempt": self.attempt, "status": self.status,
                "duration_s": round(self.duration_s, 3),
                "steps": [{"name": s.name, "status": s.status, "duration_s": round(s.duration_s, 3),
                           "message": s.message, **({"started_at": iso_of(s.started_wall)} if s.started_wall else {})}
                          for s in self.steps]}


class Runner:
    """Runs `steps` of `workflow` against the run directory `store`, holding its lock throughout.

    `rollback_on_failure`: the cutover rolls back on failure; `start` stops and is resumed instead.
    `guard(state)` runs under the lock before anything else and may refuse (or note the phase in the state);
    `on_done(ctx)` runs before the run is recorded as done; `linear`: see the module's docstring.
    """

    def __init__(self, store: Store, workflow: str, steps: Sequence[Step], *, rollback_on_failure: bool,
                 resume_hint: str | None = None, undo_hint: str | None = None, linear: bool = False,
                 guard: Callable[[dict[str, Any]], None] | None = None,
                 on_done: Callable[[RunContext], None] | None = None, past_no_return_hint: str | None = None):
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate step names in {workflow}: {names}")
        self.store = store
        self.workflow = workflow
        self.steps = list(steps)
        self.rollback_on_failure = rollback_on_failure
        self.resume_hint = resume_hint
        self.undo_hint = undo_hint
        self.linear = linear
        self.guard = guard
        self.on_done = on_done
        self.past_no_return_hint = past_no_return_hint or ("the application already uses the new primary: do not "
                                                           "roll back blindly; fix the cause, then rerun the same "
                                                           "command to finish")
        self.run_id = uuid.uuid4().hex[:12]
        self.attempt = self.run_id
        self.resumed = False
        self.current: str | None = None
        self.state: dict[str, Any] = {}
        self.log = log.get(workflow=workflow, run_id=self.run_id)

    # -- persistence ---------------------------------------------------------------------------
    @property
    def _run(self) -> dict[str, Any]:
        return self.state["runs"][self.workflow]

    def save(self, *, durable: bool = True) -> None:
        """Persist the state. A switch's saves while it runs are not fsynced (`durable=False`): they survive
        a killed process, which is what the kill matrix tests, and a power loss of the machine that runs
        migrate may bring back an earlier state, which done() then checks against the servers. The run's
        start, end, failure and rollbacks are always fsynced."""
        self.store.save_state(self.state, durable=durable)

    def _journal(self, event: str, durable: bool = True, **fields: Any) -> None:
        self.store.journal(event, durable=durable, workflow=self.workflow, run_id=self.run_id, **fields)

    def _set_step(self, name: str, *, persist: bool = True, **fields: Any) -> None:
        self._run["steps"].setdefault(name, {}).update(fields)
        if persist:
            self.save(durable=not self.linear)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> RunResult:
        with self.store.locked(command_line()):
            return self._run_locked()

    def _begin(self, *, resume_only: bool = False) -> tuple[RunContext, bool]:
        """Load the state and open this run's record: the attempt it resumes, or a new one."""
        self.state = self.store.load_state()
        self.state.setdefault("runs", {})
        self.state.setdefault("data", {})
        if self.guard:
            self.guard(self.state)
        previous = self.state["runs"].get(self.workflow, {})
        resumed = previous.get("status") in RESUMABLE
        if resume_only and not resumed:
            raise Refused(f"no {self.workflow} in progress to undo (its last run ended "
                          f"{previous.get('status') or 'never'})")
        self.attempt = (previous.get("attempt") or previous.get("run_id")) if resumed else self.run_id
        self.state["runs"][self.workflow] = {
            "run_id": self.run_id, "attempt": self.attempt, "status": "running", "started_at": now_iso(),
            "steps": dict(previous.get("steps", {})) if resumed else {},
            "facts": previous.get("facts", {}) if resumed else {},
            "resumed_from": previous.get("run_id") if resumed else None,
        }
        self.save()
        return RunContext(self, self.state["data"], self._run["facts"]), resumed

    def _run_locked(self) -> RunResult:
        ctx, resumed = self._begin()
        self.resumed = resumed
        self._journal("run_started", steps=[s.name for s in self.steps], resumed=resumed, attempt=self.attempt)
        started = time.monotonic()
        result = RunResult(self.workflow, self.run_id, "running", attempt=self.attempt)
        for step in self.steps:
            outcome = self._one_step(step, ctx)
            result.steps.append(outcome)
            if outcome.status == "failed":
                return self._fail(step, outcome, result, ctx, started)
        if self.on_done:
            self.on_done(ctx)
        result.status = "done"
        result.duration_s = time.monotonic() - started
        self._run["status"] = "done"
        self._run["finished_at"] = now_iso()
        self.save()
        self._journal("run_done", duration_s=round(result.duration_s, 3))
        return result

    def undo(self) -> RunResult:
        """Roll back the attempt in progress (one that died or failed before its point of no return) without
        running any step of it: what `migrate rollback` does with a cutover that died in its middle."""
        with self.store.locked(command_line()):
            ctx, _ = self._begin(resume_only=True)
            self._run["status"] = "rolling_back"
            self.save()
            self._journal("undo_started", attempt=self.attempt)
            started = time.monotonic()
            begun = [s for s in self.steps if self._run["steps"].get(s.name, {}).get("status") in STARTED]
            result = RunResult(self.workflow, self.run_id, "rolled_back", attempt=self.attempt)
            complete = self._rollback(begun[-1], ctx) if begun else True
            result.duration_s = time.monotonic() - started
            result.steps = [StepOutcome(s.name, self._run["steps"].get(s.name, {}).get("status", "not_run"), 0.0,
                                        self._run["steps"].get(s.name, {}).get("rollback_message", ""))
                            for s in self.steps]
            result.status = "rolled_back" if complete else "rollback_failed"
            self._run["status"] = result.status
            self._run["finished_at"] = now_iso()
            self.save()
            self._journal("run_rolled_back" if complete else "run_failed", attempt=self.attempt, undo=True)
            if not complete:
                raise StepFailed(f"{self.workflow}: undoing run {self.attempt} did not complete; see the journal for "
                                 "the step that could not be undone",
                                 hint=self.undo_hint or f"fix what the journal ({self.store.journal_path}) names, "
                                                        "then run the same command again")
            return result

    def hold(self, step: str | None, point: str) -> None:
        if os.environ.get(HOLD_ENV) == f"{self.workflow}:{step}:{point}":
            self._journal("held", step=step, point=point, pid=os.getpid())
            time.sleep(float(os.environ.get(HOLD_S_ENV) or HOLD_S))

    def _later_step_began(self, step: Step) -> bool:
        """A later step that changes something has begun in this attempt (a check or a hook does not count)."""
        later = self.steps[self.steps.index(step) + 1:]
        return any(not s.changes_nothing and self._run["steps"].get(s.name, {}).get("status") in STARTED
                   for s in later)

    def _one_step(self, step: Step, ctx: RunContext) -> StepOutcome:
        self.current = step.name
        if self.linear and not step.always_recheck and self._later_step_began(step):
            already, message = True, "done earlier in this attempt (a later step has begun); not repeated"
        elif self.linear and not self.resumed:
            already, message = False, ""
        else:
            message = "already done (checked on the servers); skipped"
            try:
                already = step.done(ctx)
            except MigrateError as exc:
                self.log.warning("could not check whether the step is done; running it", step=step.name,
                                 reason=str(exc))
                already = False
        if already:
            step.skipped(ctx)
            self._set_step(step.name, status="done", message=message, skipped_at=now_iso())
            self._journal("step_skipped", step=step.name, message=message)
            self.log.info(message, step=step.name)
            return StepOutcome(step.name, "skipped", 0.0, message)

        attempts = self._run["steps"].get(step.name, {}).get("attempts", 0) + 1
        self._set_step(step.name, persist=step.persist_start, status="running", started_at=now_iso(), attempts=attempts)
        self._journal("step_started", durable=False, step=step.name, attempt=attempts, timeout_s=step.timeout_s)
        self.log.info("step started", step=step.name, what=step.describe())
        self.hold(step.name, "start")
        t0, wall0 = time.monotonic(), time.time()
        try:
            message = self._call_with_timeout(step, ctx)
        except BaseException as exc:  # noqa: BLE001 - any failure, Ctrl-C included, ends the step as failed
            duration = time.monotonic() - t0
            reason = _reason(exc)
            self._set_step(step.name, status="failed", finished_at=now_iso(), duration_s=round(duration, 3),
                           message=reason)
            self._journal("step_failed", step=step.name, duration_s=round(duration, 3), error=reason)
            self.log.error("step failed", step=step.name, error=reason)
            if not isinstance(exc, MigrateError | KeyboardInterrupt):  # a bug: keep where it happened
                self.log.debug("unexpected error", step=step.name, exc_info=exc)
            return StepOutcome(step.name, "failed", duration, reason, error=exc, started_wall=wall0)
        duration = time.monotonic() - t0
        # Persisted with the next step's start (or the run's end): a crash in between leaves it "running", and
        # the resumed run asks the servers (done()) before believing it. One fsync less per step, which the
        # application waits for during a switch.
        self._set_step(step.name, persist=False, status="done", finished_at=now_iso(),
                       duration_s=round(duration, 3), message=message)
        self._journal("step_done", durable=False, step=step.name, duration_s=round(duration, 3), message=message)
        self.log.info(message, step=step.name, duration_s=round(duration, 3))
        return StepOutcome(step.name, "done", duration, message, started_wall=wall0)

    def _call_with_timeout(self, step: Step, ctx: RunContext) -> str:
        """Run the step in a worker thread; past its timeout, cancel it (close its connections, stop its
        commands) so nothing it started keeps going, then fail it."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = step.run(ctx)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = exc

        ctx._cancel_hooks = []
        ctx._checkpointed = False
        ctx.cancelled.clear()
        worker = threading.Thread(target=target, name=f"step-{step.name}", daemon=True)
        worker.start()
        try:
            worker.join(step.timeout_s)
        except BaseException:
            ctx.cancel()
            worker.join(CANCEL_GRACE_S)
            ctx.end_progress()
            raise
        ctx.end_progress()
        if worker.is_alive():
            ctx.cancel()
            worker.join(CANCEL_GRACE_S)
            raise StepTimeout(f"step {step.name} did not finish within its timeout of {step.timeout_s:g} s "
                              "and was cancelled")
        if "error" in box:
            raise box["error"]
        return str(box.get("value") or f"{step.name} done")

    # -- failure -------------------------------------------------------------------------------
    def _fail(self, step: Step, outcome: StepOutcome, result: RunResult, ctx: RunContext,
              started: float) -> RunResult:
        result.duration_s = time.monotonic() - started
        if isinstance(outcome.error, Refused) and self._nothing_changed_before(step):
            self._run["status"] = "refused"
            self.save()
            self._journal("run_refused", failed_step=step.name, reason=outcome.message)
            raise outcome.error
        passed_no_return = [s for s in self.steps if s.point_of_no_return and
                            self._run["steps"].get(s.name, {}).get("status") == "done"]
        if not self.rollback_on_failure or passed_no_return:
            self._run["status"] = "failed"
            self.save()
            self._journal("run_failed", failed_step=step.name, error=outcome.message)
            if passed_no_return:
                raise StepFailed(
                    f"{self.workflow}: step {step.name} failed after the point of no return "
                    f"({passed_no_return[0].name}): {outcome.message}",
                    hint=_then(outcome, self.past_no_return_hint))
            raise StepFailed(f"{self.workflow}: step {step.name} failed: {outcome.message}",
                             hint=_then(outcome, self.resume_hint or f"fix the cause, then rerun `migrate "
                                                                     f"{self.workflow}`: it resumes from this step"))
        undone = self._rollback(step, ctx)
        self._run["status"] = "rolled_back" if undone else "rollback_failed"
        self.save()
        if not undone:
            self._journal("run_failed", failed_step=step.name, error=outcome.message, rollback="incomplete")
            raise StepFailed(f"{self.workflow}: step {step.name} failed ({outcome.message}) and the rollback "
                             "did not complete; see the journal for the step that could not be undone",
                             hint=self.undo_hint or f"undo by hand what the journal ({self.store.journal_path}) "
                                                    "lists as rollback_failed; every other step was undone")
        self._journal("run_rolled_back", failed_step=step.name, error=outcome.message)
        raise RolledBack(f"{self.workflow}: step {step.name} failed: {outcome.message}; everything before it "
                         "was rolled back and the source is as it was",
                         hint=_then(outcome, f"rerun `migrate {self.workflow}`"))

    def _nothing_changed_before(self, step: Step) -> bool:
        """A refusal when every step before it only checked (a gate) changed nothing: nothing to roll back."""
        earlier = self.steps[: self.steps.index(step)]
        return all(s.changes_nothing or self._run["steps"].get(s.name, {}).get("status") != "done" for s in earlier)

    def _rollback(self, failed: Step, ctx: RunContext) -> bool:
        """Undo, newest first, every step of this workflow that ran or was found done. True if all undone."""
        index = self.steps.index(failed)
        complete = True
        for step in reversed(self.steps[: index + 1]):
            status = self._run["steps"].get(step.name, {}).get("status")
            if status not in ("done", "failed", "running"):
                continue
            self.current = step.name
            t0 = time.monotonic()
            self._journal("rollback_started", step=step.name)
            try:
                message = self._undo_step(step, ctx)
            except Exception as exc:  # noqa: BLE001 - keep undoing the rest, report this one
                complete = False
                reason = _reason(exc)
                self._set_step(step.name, rollback="failed", rollback_error=reason)
                self._journal("rollback_failed", step=step.name, error=reason,
                              duration_s=round(time.monotonic() - t0, 3))
                self.log.error("rollback failed", step=step.name, error=reason)
                continue
            self._set_step(step.name, status="rolled_back" if message else status,
                           rollback_message=message or "nothing to undo")
            self._journal("rollback_done", step=step.name, message=message or "nothing to undo",
                          duration_s=round(time.monotonic() - t0, 3))
            if message:
                self.log.info(message, step=step.name, rollback=True)
        return complete


    def _undo_step(self, step: Step, ctx: RunContext) -> str | None:
        """The step's rollback, tried again for `step.rollback_retry_s` while a server does not answer: a network
        blip must not leave what the step took (the application's write privileges) to a human."""
        deadline = time.monotonic() + step.rollback_retry_s
        while True:
            try:
                return step.rollback(ctx)
            except MigrateError as exc:
                if time.monotonic() >= deadline:
                    raise
                self.log.warning("rollback failed; trying again", step=step.name, reason=_reason(exc))
                time.sleep(ROLLBACK_RETRY_EVERY_S)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C / SIGINT)"
    text = exc.message if isinstance(exc, MigrateError) else f"{type(exc).__name__}: {exc}"
    return log.redact(text)


def _then(outcome: StepOutcome, next_step: str) -> str:
    """The failed step's own hint (what to fix), then what to run."""
    cause = getattr(outcome.error, "hint", None)
    return f"{cause}; then {next_step}" if cause else next_step
