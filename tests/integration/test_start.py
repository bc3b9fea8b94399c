"""`migrate start` on real servers, with mysqldump (the other tool is covered by the cutover tests):
a seed taken while the application writes, replication from its exact coordinates, accounts and code
objects carried, events disabled on the replica, nothing of the seed in the target's binlog, and a rerun
that finds everything done."""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.adapters.db import DatabaseError
from migrate.capabilities import replication
from migrate.playbook import load
from migrate.sandbox import sample_data
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.sandbox import Sandbox
from migrate.sandbox.workload import AppWorkload, WorkloadResult
from tests.helpers import Reusable, endpoint_as, fingerprint, open_session, run_migrate, write_playbook


def wait_caught_up(sb, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = run_migrate("status", "-p", str(sb.playbook_path), "--json")
        data = json.loads(result.stdout)
        if data.get("lag") and data["lag"]["caught_up"] and data["replication"]["healthy"]:
            return data
        time.sleep(0.3)
    raise AssertionError(f"not caught up: {result.stdout}")


@dataclass
class Started:
    sb: Sandbox
    playbook: Path
    result: subprocess.CompletedProcess
    writes: WorkloadResult


@contextlib.contextmanager
def started_under_writes() -> Iterator[Started]:
    """A sandbox of its own (3000 rows, an event on the source) and `migrate start` with mysqldump while the
    application writes."""
    with sandbox_mod.temporary(3000) as sb:
        owner = open_session(endpoint_as(sb.ports["source"], sample_data.OWNER_USER, sb.secret("owner")))
        with owner:
            owner.run("CREATE EVENT shop.nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM shop.orders WHERE 1 = 0")
        playbook = write_playbook(sb.playbook_path, sb.dir / "pb-mysqldump.yml", seed={"tool": "mysqldump"})
        load = AppWorkload(lambda: endpoint_as(sb.ports["haproxy"], sample_data.APP_USER, sb.secret("app")),
                           rate=100, threads=2).start()
        try:
            result = run_migrate("start", "-p", str(playbook), "--json", timeout=300)
            time.sleep(0.5)
        finally:
            writes = load.stop()
        yield Started(sb, playbook, result, writes)


@pytest.fixture(scope="module")
def shared() -> Iterator[Reusable[Started]]:
    """The start below, made once for the module's tests that read what it did, by whichever asks first."""
    made = Reusable(started_under_writes)
    try:
        yield made
    finally:
        made.used_up()


@pytest.fixture
def started(shared) -> Started:
    return shared.get()


@pytest.fixture
def started_to_break(shared) -> Iterator[Started]:
    """The same, for a test that leaves the target no longer replicating; afterwards it is used up."""
    try:
        yield shared.get()
    finally:
        shared.used_up()


def test_start_with_mysqldump_under_writes_gives_a_matching_replica(started):
    sb, result, writes = started.sb, started.result, started.writes
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    steps = {s["name"]: s for s in json.loads(result.stdout)["steps"]}
    assert "with mysqldump" in steps["seed"]["message"] and "GTID" in steps["seed"]["message"]
    assert writes.acked_order_ids, "the application could not write during the seed"

    status = wait_caught_up(sb)
    assert status["target_read_only"] is True
    with sb.source.root() as s, sb.target.root() as t:
        for table, key in (("customers", "id"), ("orders", "id"), ("order_lines", "order_id")):
            assert fingerprint(s, "shop", table, key, None) == fingerprint(t, "shop", table, key, None), table
        # accounts and code objects
        for user in (sample_data.APP_USER, sample_data.OWNER_USER):
            assert t.value("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,)) == 1
        assert t.value("SELECT status FROM information_schema.events WHERE event_name = 'nightly'") in (
            "DISABLED", "SLAVESIDE_DISABLED")  # the dump read an RDS read replica: its events are slave-side disabled
        assert s.value("SELECT status FROM information_schema.events WHERE event_name = 'nightly'") == "ENABLED"
        assert t.value("SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = 'shop'") == 1
        # the seed itself never reached the target's binlog: only replicated transactions of the source's domain
        own = [g for g in (t.variable("gtid_binlog_pos") or "").split(",") if g and g.split("-")[1] != "1"]
        assert own == []
    # the trigger runs as its definer, who exists on the target (no 1449) and, like everyone but the
    # administrator, may not write to the read-only replica (1290)
    with sb.target.root() as t, pytest.raises(DatabaseError) as exc:
        t.run("SET SESSION sql_log_bin = 0")
        t.run("START TRANSACTION")
        t.run("INSERT INTO shop.order_lines (order_id, line_no, sku, qty, price_cents) VALUES (1, 99, 'X', 1, 1)")
    assert exc.value.code == 1290


def test_rerunning_start_finds_every_step_done(started):
    result = run_migrate("start", "-p", str(started.playbook), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {s["status"] for s in json.loads(result.stdout)["steps"]} == {"skipped"}


def test_status_shows_health_and_lag(started):
    result = run_migrate("status", "-p", str(started.playbook))
    assert result.returncode == 0
    assert "replicating: the target is a read-only replica" in result.stdout
    assert "replication: target from source: healthy" in result.stdout and "caught up" in result.stdout


def test_the_rds_service_tables_never_reach_the_target(started):
    """RDS logs writes to tables of its own (mysql.rds_*): the target lacks them, and without start's filter its
    replication stops at the first one (error 1146)."""
    sb = started.sb
    with sb.master() as master:
        hours = {r["name"]: r["value"] for r in master.run("CALL mysql.rds_show_configuration")}[
            "binlog retention hours"]
        master.run("CALL mysql.rds_set_configuration('binlog retention hours', %s)", (int(hours or 24) + 1,))
        master.run("CALL mysql.rds_set_configuration('binlog retention hours', %s)", (hours,))  # 2 row events
    wait_caught_up(sb)
    with sb.target.root() as t:
        assert t.variable("replicate_wild_ignore_table") == "mysql.rds%"
        assert not t.value("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'mysql' AND "
                           "table_name LIKE 'rds%%'")


def test_the_rds_read_replica_procedure_ran_and_cleaned_up(started):
    """consistency auto on RDS: a temporary read replica in the RDS API (moto), the sandbox's replica server
    standing in for its endpoint; afterwards the replica instance is deleted and the server replicates again."""
    from migrate.adapters import aws as aws_adapter
    from migrate.capabilities.seed.rds_replica import replica_id

    sb = started.sb
    state = json.loads((sb.dir / "state" / "sandbox" / "state.json").read_text())
    assert state["data"]["seed"]["consistency"] == "replica"
    journal = (sb.dir / "state" / "sandbox" / "journal.jsonl").read_text()
    assert "read replica shop-prod-migrate-seed deleted" in journal
    rds = aws_adapter.client(sb.aws.settings, "rds")
    names = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]]
    assert replica_id(load(sb.playbook_path)) not in names
    with sb.replica.root() as r:
        assert replication.read_status(r).healthy


def test_keep_replica_leaves_the_read_replica_replicating(tmp_path):
    from migrate.adapters import aws as aws_adapter

    with sandbox_mod.temporary(500) as sb:
        playbook = write_playbook(sb.playbook_path, sb.dir / "pb-keep.yml",
                                  seed={"consistency": "replica", "keep_replica": True})
        result = run_migrate("start", "-p", str(playbook), "--json")
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        seeded = next(s for s in json.loads(result.stdout)["steps"] if s["name"] == "seed")["message"]
        assert "replicating again (seed.keep_replica)" in seeded
        names = [i["DBInstanceIdentifier"] for i in
                 aws_adapter.client(sb.aws.settings, "rds").describe_db_instances()["DBInstances"]]
        assert "shop-prod-migrate-seed" in names
        with sb.replica.root() as r:
            assert replication.read_status(r).healthy


def test_the_start_report_lists_what_was_carried_and_skipped(started):
    report = json.loads((started.sb.dir / "state" / "sandbox" / "report.json").read_text())
    assert report["workflow"] == "start"
    facts = report["facts"]
    assert "'app_rw'@'%'" in facts["accounts carried"] and "'shop_owner'@'%'" in facts["accounts carried"]
    assert facts["events kept disabled until promotion"] == ["shop.nightly"]
    assert "Write downtime" not in (started.sb.dir / "state" / "sandbox" / "report.md").read_text()


def test_a_dump_held_back_by_a_lock_is_stopped_retried_once_and_explained():
    """A session holding a write lock keeps mydumper's LOCK TABLES waiting (and, behind it, the application's
    writes): the dump is stopped after seed.stall_timeout_s, tried once more, then refused with what the source
    was doing; afterwards nothing of the dump is left waiting."""
    with sandbox_mod.temporary(500) as sb:
        playbook = write_playbook(sb.playbook_path, sb.dir / "pb-stall.yml",
                                  seed={"tool": "mydumper", "consistency": "lock", "stall_timeout_s": 3})
        with sb.source.root() as holder:
            holder.run("LOCK TABLES shop.orders WRITE")
            result = run_migrate("start", "-p", str(playbook), timeout=300)
            with sb.source.root() as s:
                waiting = s.value("SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'admin' "
                                  "AND state LIKE '%%lock%%'")
            holder.run("UNLOCK TABLES")
        assert result.returncode == 4, result.stdout[-2000:]
        assert "the dump wrote nothing for 3 s and was stopped" in result.stdout
        assert "metadata lock" in result.stdout and "seed.consistency: replica" in result.stdout
        assert "starting it over once" in result.stderr
        assert waiting == 0


def test_start_stops_with_the_servers_error_and_a_hint_when_the_replication_password_is_wrong(started_to_break):
    """Last in file order: it leaves the target not replicating (a replica reset under it)."""
    sb = started_to_break.sb
    with sb.target.root() as t:
        replication.forget(t)
    (sb.dir / "wrong.pw").write_text("not-the-password\n")
    (sb.dir / "wrong.pw").chmod(0o600)
    playbook = write_playbook(started_to_break.playbook, sb.dir / "pb-wrong.yml",
                              replication={"password_file": str(sb.dir / "wrong.pw")})
    result = run_migrate("start", "-p", str(playbook))
    assert result.returncode == 4, result.stdout + result.stderr[-2000:]
    assert "replication account cannot log in" in result.stdout and "(1045)" in result.stdout
    assert "set replication.password" in result.stdout and "rerun `migrate start`" in result.stdout
    assert "not-the-password" not in result.stdout + result.stderr
    # With the right password, the rerun goes on from what the target applied, never from the snapshot again
    # (that replayed rows and stopped on a duplicate key, 1062).
    result = run_migrate("start", "-p", str(started_to_break.playbook), "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    replicating = next(s for s in json.loads(result.stdout)["steps"] if s["name"] == "replication")
    assert "configured again from what it had applied" in replicating["message"], replicating
    with sb.source.root() as s:
        s.run("INSERT INTO shop.customers (name, email) VALUES ('after the reset', 'reset@example.com')")
        expected = s.value("SELECT MAX(id) FROM shop.customers")
    status = wait_caught_up(sb)
    assert status["replication"]["healthy"], status
    with sb.target.root() as t:
        assert t.value("SELECT MAX(id) FROM shop.customers") == expected
