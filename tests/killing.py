"""A switch SIGKILLed at a step's start or middle (the runner's test hold point), then a command run after it, and
what must hold once that command is done: the application writing on one server, the other following it, no
acknowledged write lost. Shared by the kill matrix (every step) and the write-block and repoint tests (the steps
their method acts in)."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path

from migrate.capabilities import replication
from tests.helpers import open_session, spawn_migrate, wait_for
from tests.switching import Load, app_endpoint, journal, migrate, missing_orders, phase_of, to_phase

OPPOSITE = {"cutover": "rollback", "rollback": "cutover"}
DONE = {"cutover": "cut_over", "rollback": "rolled_back"}


@dataclass(frozen=True)
class Case:
    workflow: str
    step: str
    point: str  # start | middle
    then: str  # the command run after the kill
    refused: bool = False  # `then` must refuse (the application already moved), and the same command finish

    def __str__(self) -> str:
        return f"{self.workflow}-{self.step}-{self.point}-then-{self.then}" + ("-refused" if self.refused else "")


def killed_at(sb, playbook: Path, case: Case) -> None:
    """`migrate <workflow> --yes` held at the case's point, then SIGKILLed there."""
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


def kill_then_recover(sb, playbook: Path, case: Case) -> str:
    """From the phase the case starts in, under ~100 orders/s: kill, run the case's command (and after a refusal,
    the same command again), then check the application writes on one server that the other follows, nothing
    acknowledged lost. Returns the server the application ends on ("source" or "target")."""
    to_phase(sb, playbook, "replicating" if case.workflow == "cutover" else "cut_over")
    before = phase_of(sb).phase
    with Load(sb, rate=100) as load_:
        killed_at(sb, playbook, case)
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
    with primary.root() as p:
        primary_id = p.value("SELECT @@server_id")
    with open_session(app_endpoint(sb)) as app:
        assert app.value("SELECT @@server_id") == primary_id
        app.run("CALL shop.place_order(3, 'SKU-0003', 1, 300, @o)")
    with replica.root() as r:
        status = replication.read_status(r)
        assert status.healthy and (status.source_host, status.source_port) == (primary.host, primary.port), status
    with primary.root() as p:
        assert load_.result.acked_order_ids and missing_orders(p, load_.result.acked_order_ids) == []
    return now.app_on
