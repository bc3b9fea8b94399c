"""`migrate start`: seed the target and make it a replica of the source. Resumable: a failure stops
the run (nothing is undone: a seed is expensive), and rerunning continues from the first step not done."""

from __future__ import annotations

from migrate.runner import Runner, RunResult
from migrate.steps import start as start_steps
from migrate.workflows.context import Migration


def run(m: Migration) -> RunResult:
    runner = Runner(m.store, "start", start_steps.steps(m), rollback_on_failure=False,
                    resume_hint="fix the cause, then rerun `migrate start`: it resumes from the step that failed")
    try:
        return runner.run()
    finally:
        m.close()
