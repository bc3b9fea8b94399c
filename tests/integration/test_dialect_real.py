"""The dialect, run for real: the target replicates from the source using only the statements the
dialect produces, and every normalized record matches what the servers did. On the sandbox this is the
MariaDB path (source RDS-like); with MIGRATE_TEST_BACKEND=docker the same tests run on MySQL 8.0."""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager

import pytest

from migrate.adapters.db import Session, quote_ident
from migrate.adapters.dialect import ReplicaStatus, Unsupported
from migrate.capabilities import heartbeat, heartbeat_event
from migrate.capabilities.inspector import TOOL_SCHEMA
from tests.helpers import endpoint_as, open_session

REPL_PASSWORD = "repl-test-pw-1"


def point_at_source(pair, user: str, password: str) -> None:
    """CHANGE MASTER/REPLICATION SOURCE from the source's current GTID position, flavor by flavor."""
    t = pair.target.dialect
    if t.flavor == "mariadb":
        where = {"gtid": pair.source.value(pair.source.dialect.binlog_gtid_position())}
    else:
        where = {"auto_position": True}
    for stmt in t.change_source(pair.source_host_from_target, pair.source_port_from_target, user, password,
                                **where):
        pair.target.run(stmt)


@pytest.fixture
def replica(pair, schema):
    """Target replicating from the source from its current GTID position; reset afterwards."""
    source, target = pair.source, pair.target
    source.run("CREATE USER IF NOT EXISTS 'repl_t'@'%%' IDENTIFIED BY %s", (REPL_PASSWORD,))
    source.run(source.dialect.grant_replication("repl_t"))
    t = target.dialect
    try:
        point_at_source(pair, "repl_t", REPL_PASSWORD)  # the schema below reaches the target by replication
        source.run(f"CREATE DATABASE {quote_ident(schema)}")
        source.run(f"CREATE TABLE {quote_ident(schema)}.t (id INT PRIMARY KEY, v VARCHAR(20))")
        target.run(t.start_replica())
        yield schema
    finally:
        target.run(t.stop_replica())
        target.run(t.reset_replica_all())
        if t.flavor == "mariadb":
            target.run("SET GLOBAL gtid_slave_pos = ''")
        target.run(t.reset_binary_logs())
        source.run("DROP USER IF EXISTS 'repl_t'@'%'")


def status_of(session: Session) -> ReplicaStatus:
    d = session.dialect
    return d.parse_replica_status(session.one(d.replica_status()), gtid=session.value(d.replica_gtid_position()))


def wait_healthy(session: Session, timeout: float = 10) -> ReplicaStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = status_of(session)
        if status.healthy:
            return status
        time.sleep(0.05)
    raise AssertionError(f"replica not healthy: {status}")


def test_detects_mariadb_and_the_rds_flag_from_the_real_servers(master, target_root):
    assert master.dialect.flavor == "mariadb" and master.dialect.version >= (10, 11, 0)
    assert master.dialect.rds is False  # a plain connection does not know; the endpoint says so
    rds_session = open_session(dataclasses.replace(master.endpoint, rds=True))
    with rds_session:
        assert rds_session.dialect.rds and rds_session.dialect.name.endswith("(RDS)")


def test_an_unconfigured_replica_reads_as_not_configured(pair):
    assert status_of(pair.target).configured is False


def test_replicates_and_waits_for_gtid_and_position(replica, pair):
    master, target_root = pair.source, pair.target
    status = wait_healthy(target_root)
    assert status.using_gtid and status.source_port == pair.source_port_from_target
    master.run(f"INSERT INTO {quote_ident(replica)}.t VALUES (1, 'one')")
    d = master.dialect
    binlog = d.parse_binlog_status(master.one(d.binlog_status()), gtid=master.value(d.binlog_gtid_position()))
    assert binlog.file and binlog.pos > 4 and binlog.gtid_set
    t = target_root.dialect
    assert t.wait_outcome("gtid", target_root.value(t.wait_for_gtid(binlog.gtid_set, 10))) == "reached"
    assert t.wait_outcome("position", target_root.value(t.wait_for_position(binlog.file, binlog.pos, 10))) == "reached"
    assert target_root.value(f"SELECT v FROM {quote_ident(replica)}.t WHERE id = 1") == "one"
    caught_up = status_of(target_root)
    assert (caught_up.exec_source_log_file, caught_up.exec_source_log_pos) == (binlog.file, binlog.pos)
    assert caught_up.executed_gtid_set == binlog.gtid_set and caught_up.seconds_behind == 0


def test_a_stopped_sql_thread_shows_in_status_and_makes_the_wait_time_out(replica, pair):
    master, target_root = pair.source, pair.target
    wait_healthy(target_root)
    t = target_root.dialect
    target_root.run(t.stop_replica_sql_thread())
    master.run(f"INSERT INTO {quote_ident(replica)}.t VALUES (2, 'two')")
    gtid = master.value(master.dialect.binlog_gtid_position())
    status = status_of(target_root)
    assert status.io_running and not status.sql_running and not status.healthy and status.seconds_behind is None
    assert t.wait_outcome("gtid", target_root.value(t.wait_for_gtid(gtid, 1))) == "timeout"
    target_root.run(t.start_replica_sql_thread())
    assert t.wait_outcome("gtid", target_root.value(t.wait_for_gtid(gtid, 10))) == "reached"


def test_a_wrong_replication_password_shows_as_an_io_error(replica, pair):
    target_root, t = pair.target, pair.target.dialect
    target_root.run(t.stop_replica())
    point_at_source(pair, "repl_t", "wrong-password")
    target_root.run(t.start_replica())
    deadline = time.monotonic() + 10
    status = status_of(target_root)
    while time.monotonic() < deadline and not status.last_io_errno:
        time.sleep(0.1)
        status = status_of(target_root)
    assert status.last_io_errno == 1045 and not status.io_running
    assert "(1045)" in status.last_error


def test_read_only_is_switched_by_the_dialect_and_refused_on_rds(pair):
    target_root, master, t = pair.target, pair.source, pair.target.dialect
    try:
        for stmt in t.set_read_only(False):
            target_root.run(stmt)
        assert t.parse_read_only(target_root.one(t.read_only_status())) == (False, False)
    finally:
        for stmt in t.set_read_only(True):
            target_root.run(stmt)
    assert t.parse_read_only(target_root.one(t.read_only_status()))[0] is True
    with pytest.raises(Unsupported):
        dataclasses.replace(master.dialect, rds=True).set_read_only(True)


def test_kill_goes_through_rds_kill_for_the_master_user(sandbox, master, source_root):
    victim = open_session(endpoint_as(sandbox.ports["source"], "shop_owner", sandbox.secret("owner")))
    rds = dataclasses.replace(master.dialect, rds=True)
    master.run(rds.kill(victim.connection_id))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and source_root.value(
            "SELECT COUNT(*) FROM information_schema.processlist WHERE id = %s", (victim.connection_id,)):
        time.sleep(0.05)
    assert source_root.value("SELECT COUNT(*) FROM information_schema.processlist WHERE id = %s",
                             (victim.connection_id,)) == 0
    victim.close()


def test_rds_configuration_statements_run_as_the_master_user(master, rds_retention):
    rds = dataclasses.replace(master.dialect, rds=True)
    master.run(rds.set_binlog_retention(48))
    rows = {r["name"]: r["value"] for r in master.run(rds.show_rds_configuration())}
    assert rows["binlog retention hours"] == "48"


def _has_schema(session: Session) -> bool:
    return bool(session.value("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                              (TOOL_SCHEMA,)))


@contextmanager
def heartbeat_table_on_both(pair):
    """The tool's heartbeat table on the source and, with the source's rows, on the target (out of its binary log):
    the replica fixture starts from the source's current position, and an earlier test may have made the table on
    the source only. Whatever this made goes again afterwards."""
    source, target = pair.source, pair.target_root
    had = _has_schema(source), _has_schema(target)
    heartbeat.ensure_table(source)
    rows = source.run(f"SELECT server_id, ts, interval_ms, writer FROM {heartbeat.TABLE}")
    target.run("SET SESSION sql_log_bin = 0")
    try:
        target.run(f"CREATE DATABASE IF NOT EXISTS {TOOL_SCHEMA}")
        target.run(heartbeat.CREATE)
        for r in rows:
            target.run(f"REPLACE INTO {heartbeat.TABLE} VALUES (%s, %s, %s, %s)",
                       (r["server_id"], r["ts"], r["interval_ms"], r["writer"]))
        yield
    finally:
        if not had[0]:  # through replication: the target and the sandbox's replica server drop it too
            source.run(f"DROP DATABASE IF EXISTS {TOOL_SCHEMA}")
        if not had[1]:
            target.run(f"DROP DATABASE IF EXISTS {TOOL_SCHEMA}")
        target.run("SET SESSION sql_log_bin = 1")


def test_the_heartbeat_event_writes_stops_with_no_run_left_and_stays_off_on_the_replica(replica, pair):
    """heartbeat_event's SQL for real (MariaDB here, MySQL 8 with the docker backend), as the source's migrate
    account: installed, it writes about twice a second; on the replica the server keeps it off by itself; stopped,
    nothing of it writes any more; dropped."""
    source, target = pair.source, pair.target
    wait_healthy(target)
    scheduler = pair.source_root.value("SELECT @@global.event_scheduler")
    server_id = int(source.value("SELECT @@server_id"))

    def last_beat():
        return source.value(f"SELECT ts FROM {heartbeat.TABLE} WHERE server_id = %s", (server_id,))

    with heartbeat_table_on_both(pair):
        pair.source_root.run("SET GLOBAL event_scheduler = ON")
        try:
            assert "created" in heartbeat_event.install(source, 0.5) and heartbeat_event.installed(source, 0.5)
            assert "unchanged" in heartbeat_event.install(source, 0.5)
            beats, until = set(), time.monotonic() + 2.6
            while time.monotonic() < until:
                beats.add(last_beat())
                time.sleep(0.05)
            assert len(beats - {None}) >= 4, beats  # 0.5 s apart
            deadline = time.monotonic() + 10
            while heartbeat_event.read(target) is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert (heartbeat_event.read(target) or {}).get("status") in (
                "SLAVESIDE_DISABLED", "REPLICA_SIDE_DISABLED"), status_of(target)
            assert "no run of it left" in heartbeat_event.stop(source) and heartbeat_event.stopped(source)
            stopped_at = last_beat()
            time.sleep(1.2)
            assert last_beat() == stopped_at and heartbeat_event.read(source)["status"] == "DISABLED"
            assert heartbeat_event.drop(source) and heartbeat_event.read(source) is None
            assert wait_healthy(target).healthy  # it applied all of it
        finally:
            heartbeat_event.drop(source)
            pair.source_root.run(f"SET GLOBAL event_scheduler = {scheduler}")
