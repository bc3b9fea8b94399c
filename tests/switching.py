"""What the switch tests share: an application writing through HAProxy, the migration's phase, and moving a
sandbox to the phase a test needs (whatever earlier tests left), through the real `migrate` command."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from migrate.capabilities import phase
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import repoints
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.sandbox import Sandbox
from migrate.sandbox.workload import AppWorkload, WorkloadResult
from tests.helpers import run_migrate, write_playbook

FAST = {"stable_for_s": 0.5, "max_lag_s": 1}


@contextmanager
def started_sandbox(rows: int = 2000, options: sandbox_mod.Options | None = None) -> Iterator[Sandbox]:
    """A sandbox of the caller's own (with `options`: its write block, repoint, source) with `migrate start` done:
    the target replicates from the source."""
    from migrate.workflows import start

    with sandbox_mod.temporary(rows, options=options) as sb:
        start.run(Migration(load(sb.playbook_path)))
        yield sb


def fast_playbook(sb, tmp_path: Path, **changes) -> Path:
    """The sandbox's playbook with short gates (1 s) and the given changes."""
    cutover = {**FAST, **changes.pop("cutover", {})}
    return write_playbook(sb.playbook_path, tmp_path / f"pb-{time.monotonic_ns()}.yml", cutover=cutover, **changes)


def app_endpoint(sb):
    """The application's endpoint now: through HAProxy, or where the sandbox's Route53 record points."""
    return repoints.app_endpoint(sb)()


def state(sb) -> dict:
    return json.loads((sb.dir / "state" / "sandbox" / "state.json").read_text())


def phase_of(sb) -> phase.Phase:
    return phase.read(state(sb))


def journal(sb) -> list[dict]:
    path = sb.dir / "state" / "sandbox" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def migrate(*args: str, expect: int | None = 0, timeout: float = 300):
    result = run_migrate(*args, timeout=timeout)
    if expect is not None:
        assert result.returncode == expect, f"migrate {' '.join(args)} exited {result.returncode}:\n" \
                                            f"{result.stdout}\n{result.stderr[-3000:]}"
    return result


def to_phase(sb, playbook: Path, wanted: str) -> None:
    """Bring the sandbox to `replicating` (the application on the source) or `cut_over` (on the target)."""
    now = phase_of(sb)
    if now.phase in ("cutting_over", "rolling_back"):  # a test left a switch in its middle: finish it
        migrate(now.workflow, "-p", str(playbook), "--yes")
        now = phase_of(sb)
    on_target = now.phase == "cut_over"
    if wanted == "cut_over" and not on_target:
        migrate("cutover", "-p", str(playbook), "--yes")
    elif wanted == "replicating" and on_target:
        migrate("rollback", "-p", str(playbook), "--yes")
    assert (phase_of(sb).phase == "cut_over") == (wanted == "cut_over")


class Load:
    """The application: orders placed through HAProxy at `rate` per second for the block's duration."""

    def __init__(self, sb, rate: float = 100):
        self.work = AppWorkload(repoints.app_endpoint(sb), rate=rate, threads=max(1, int(rate // 50)))
        self.result: WorkloadResult | None = None

    def __enter__(self) -> Load:
        self.work.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.result = self.work.stop()


def missing_orders(session, order_ids: list[int]) -> list[int]:
    if not order_ids:
        return []
    present = {r["id"] for r in session.run("SELECT id FROM shop.orders WHERE id IN (" +
                                            ", ".join(str(int(i)) for i in order_ids) + ")")}
    return sorted(set(order_ids) - present)


def primary_of(sb):
    """The server the application points at now, as root."""
    return sb.target if phase_of(sb).app_on == "target" else sb.source
