"""The cutover on real servers, through the real `migrate` command, while an application writes through
HAProxy. Refusals change nothing; failures before the point of no return roll back and exit 3 (and the
next cutover on the same sandbox then succeeds, which shows the rollback really restored everything).

These tests share one sandbox of their own. The successful cutover, last in file order, migrates it after the
refused and rolled-back ones; in any other order the tests after it get a sandbox of their own again.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from migrate.adapters.db import DatabaseError
from migrate.capabilities import replication
from migrate.sandbox import sample_data
from migrate.sandbox.workload import AppWorkload
from tests.helpers import endpoint_as, fingerprint, open_session, run_migrate, write_playbook
from tests.switching import app_endpoint, missing_orders

SHOP_KEYS = {"customers": "id", "orders": "id", "order_lines": "order_id"}


@pytest.fixture
def migrating(started_module_sandbox):
    """The module's sandbox: the target replicates from the source and the application writes to the source
    (every test below but the last leaves it so, which `assert_untouched` checks)."""
    return started_module_sandbox.get()


@pytest.fixture
def to_migrate(started_module_sandbox):
    """The module's sandbox, whatever refused or rolled-back cutovers it saw before, for a test that migrates
    it for good; afterwards it is used up."""
    try:
        yield started_module_sandbox.get()
    finally:
        started_module_sandbox.used_up()


def journal_events(sb) -> list[tuple[str, str | None]]:
    path = sb.dir / "state" / "sandbox" / "journal.jsonl"
    runs = [json.loads(line) for line in path.read_text().splitlines()]
    last_run = [e for e in runs if e.get("workflow") == "cutover"][-1]["run_id"]
    return [(e["event"], e.get("step")) for e in runs if e.get("run_id") == last_run]


def cutover_under_load(sb, playbook: Path, *, rate: float, extra: tuple[str, ...] = ()):
    """`migrate cutover --yes` while the application writes through HAProxy; (result, writes)."""
    load_ = AppWorkload(lambda: app_endpoint(sb), rate=rate, threads=max(1, int(rate // 50))).start()
    try:
        return run_migrate("cutover", "-p", str(playbook), "--yes", *extra), load_.stop()
    except BaseException:
        load_.stop()
        raise


def assert_untouched(sb) -> None:
    """Source writable by the application through HAProxy, target a read-only healthy replica."""
    with open_session(app_endpoint(sb)) as app:
        assert app.value("SELECT @@port") == sb.ports["source"]
        app.run("CALL shop.place_order(1, 'SKU-0001', 1, 100, @o)")
    with sb.target.root() as t:
        status = replication.read_status(t)
        assert status.configured and status.healthy, status
        assert t.variable("read_only") == 1


def stop_sql_thread_hook(sb, tmp_path: Path) -> str:
    """A before_cutover hook that stops the target's SQL thread: the final wait can then never succeed."""
    cnf = tmp_path / "target.cnf"
    cnf.write_text(f"[client]\nuser=root\npassword=\"{sb.target.root_password_file.read_text().strip()}\"\n"
                   f"socket={sb.target.socket}\n")
    cnf.chmod(0o600)
    return f"mariadb --defaults-file={cnf} -e 'STOP SLAVE SQL_THREAD'"


def test_dry_run_prints_the_steps_in_order_and_changes_nothing(migrating):
    result = run_migrate("cutover", "-p", str(migrating.playbook_path), "--dry-run", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    steps = json.loads(result.stdout)["steps"]
    assert [s["step"] for s in steps] == ["gates", "block_writes", "final_position", "promote", "repoint",
                                          "open_writes", "forget_old_source", "post_check", "reverse_replication"]
    assert [s["step"] for s in steps if s["point_of_no_return"]] == ["repoint"]
    assert_untouched(migrating)


def test_cutover_without_confirmation_is_refused_off_a_terminal(migrating):
    result = run_migrate("cutover", "-p", str(migrating.playbook_path))
    assert result.returncode == 2 and "--yes" in result.stdout
    assert_untouched(migrating)


def test_a_cutover_refused_by_its_gates_changes_nothing(migrating):
    with migrating.target.root() as t:
        t.run(t.dialect.stop_replica_sql_thread())
    try:
        result = run_migrate("cutover", "-p", str(migrating.playbook_path), "--yes")
        assert result.returncode == 1, result.stdout + result.stderr[-2000:]
        assert "replication on target is not healthy" in result.stdout
        assert journal_events(migrating)[-1] == ("run_refused", None)
    finally:
        with migrating.target.root() as t:
            t.run(t.dialect.start_replica_sql_thread())
    assert_untouched(migrating)


def test_a_final_wait_that_times_out_rolls_back_and_exits_3(migrating, tmp_path):
    playbook = write_playbook(migrating.playbook_path, tmp_path / "pb.yml", cutover={"timeout_s": 2},
                              hooks={"before_cutover": stop_sql_thread_hook(migrating, tmp_path)})
    result, writes = cutover_under_load(migrating, playbook, rate=100)
    assert result.returncode == 3, result.stdout + result.stderr[-2000:]
    assert "final_position failed" in result.stdout and "rolled back" in result.stdout
    events = journal_events(migrating)
    assert ("step_failed", "final_position") in events
    assert events.index(("rollback_done", "final_position")) < events.index(("rollback_done", "block_writes"))
    assert events[-1] == ("run_rolled_back", None)
    assert_untouched(migrating)
    with migrating.source.root() as s:
        missing = missing_orders(s, writes.acked_order_ids)
    assert writes.acked_order_ids and missing == []


def test_a_repoint_command_that_fails_rolls_back_and_exits_3(migrating, tmp_path):
    # The load balancer refuses the new primary; pointing it back at the source (the rollback) works.
    refuse_target = (f"sh -c 'if [ \"$MIGRATE_TARGET_PORT\" = {migrating.ports['target']} ]; then "
                     "echo no route to the load balancer >&2; exit 9; fi'")
    playbook = write_playbook(migrating.playbook_path, tmp_path / "pb.yml", cutover={"repoint": {
        "method": "command", "command": {"run": refuse_target}}})
    result, writes = cutover_under_load(migrating, playbook, rate=100)
    assert result.returncode == 3, result.stdout + result.stderr[-2000:]
    assert "exited 9" in result.stdout and "no route to the load balancer" in result.stdout
    events = journal_events(migrating)
    for step in ("promote", "block_writes"):
        assert ("rollback_done", step) in events
    assert_untouched(migrating)
    with migrating.source.root() as s:
        assert missing_orders(s, writes.acked_order_ids) == []
    report = json.loads((migrating.dir / "state" / "sandbox" / "report.json").read_text())
    assert report["status"] == "rolled_back"


def test_cutover_under_write_load_through_haproxy_loses_nothing(to_migrate):
    result, writes = cutover_under_load(to_migrate, to_migrate.playbook_path, rate=200, extra=("--json",))
    post = AppWorkload(lambda: app_endpoint(to_migrate), rate=50, threads=1).start()
    time.sleep(0.5)
    post = post.stop()
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(result.stdout)["report"]
    downtime = report["write_downtime"]
    assert downtime["lost_acknowledged_writes"] == 0 and downtime["every_acknowledged_write_on_new_primary"]
    assert downtime["longest_gap_ms"] < 5000
    assert post.acked_order_ids, "the application cannot write after the cutover"

    with to_migrate.source.root() as s, to_migrate.target.root() as t:
        assert missing_orders(t, writes.acked_order_ids + post.acked_order_ids) == []
        for table, key in SHOP_KEYS.items():
            upto = s.value(f"SELECT MAX(`{key}`) FROM shop.`{table}`")
            assert fingerprint(s, "shop", table, key, upto) == fingerprint(t, "shop", table, key, upto), table
        assert not replication.read_status(t).configured and t.variable("read_only") == 0
    with open_session(app_endpoint(to_migrate)) as app:
        assert app.value("SELECT @@port") == to_migrate.ports["target"]
    old_primary = endpoint_as(to_migrate.ports["source"], sample_data.APP_USER, to_migrate.secret("app"))
    with pytest.raises(DatabaseError) as exc, open_session(old_primary) as old:  # stays blocked for the app
        old.run("CALL shop.place_order(1, 'SKU-0001', 1, 100, @o)")
    assert exc.value.code in (1370, 1142)
    report_md = to_migrate.dir / "state" / "sandbox" / "report.md"
    assert "write downtime" in report_md.read_text().lower()
    assert stat.S_IMODE(report_md.stat().st_mode) == 0o600
    png = Path(report["files"]["timeline"])  # the timeline beside the run's own report and the latest
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert "![timeline" in report_md.read_text() and (report_md.parent / "timeline.png").exists()
    assert list((report_md.parent / "runs").glob(f"cutover-{report['run_id']}/timeline.png"))  # the run's own
