"""The runner: resumable, journaled, locked execution of a workflow's steps."""

from migrate.runner.runner import RunContext, Runner, RunResult, Step, StepOutcome
from migrate.runner.store import Store

__all__ = ["RunContext", "RunResult", "Runner", "Step", "StepOutcome", "Store"]
