"""The sandbox's servers are real and behave where `migrate` cares: RDS's master user, the rds_*
procedures, the application behind HAProxy, AWS in moto, and a playbook that works as written."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from migrate import secrets
from migrate.adapters import aws as aws_adapter
from migrate.adapters.db import DatabaseError, connect
from migrate.adapters.executor import SshExecutor
from migrate.playbook import load
from migrate.sandbox import sample_data
from migrate.sandbox.aws import INSTANCE_ID, PARAMETER_GROUP, RECORD
from tests.helpers import endpoint_as, open_session, wait_for


def _code(exc_info) -> int:
    return exc_info.value.code


def test_master_user_cannot_take_a_global_read_lock(master):
    with pytest.raises(DatabaseError) as exc:
        master.run("FLUSH TABLES WITH READ LOCK")
    assert _code(exc) == 1227


def test_master_user_cannot_set_global_read_only(master):
    with pytest.raises(DatabaseError) as exc:
        master.run("SET GLOBAL read_only = 1")
    assert _code(exc) == 1227


def test_master_user_cannot_switch_off_binary_logging_for_its_session(master):
    with pytest.raises(DatabaseError) as exc:
        master.run("SET SESSION sql_log_bin = 0")
    assert _code(exc) == 1227


def test_master_user_has_no_super_and_no_reload(master):
    grants = " ".join(next(iter(r.values())) for r in master.run("SHOW GRANTS"))
    assert "SUPER" not in grants and "RELOAD" not in grants and "REPLICATION SLAVE" in grants


def _sleeping_session(sandbox):
    """A session of another user, busy in a long query, as an application's would be."""
    app = connect(endpoint_as(sandbox.ports["source"], sample_data.APP_USER, sandbox.secret("app")))
    thread = threading.Thread(target=lambda: _swallow(app.run, "SELECT SLEEP(30)"), daemon=True)
    thread.start()
    time.sleep(0.3)
    return app, thread


def _swallow(fn, *args):
    with contextlib.suppress(DatabaseError):
        fn(*args)


def test_master_user_cannot_kill_another_users_session_but_rds_kill_can(sandbox, master, source_root):
    app, thread = _sleeping_session(sandbox)
    try:
        with pytest.raises(DatabaseError) as exc:
            master.run(f"KILL {app.connection_id}")
        assert _code(exc) == 1095  # "You are not owner of thread"
        master.run("CALL mysql.rds_kill(%s)", (app.connection_id,))
        thread.join(5)
        assert not thread.is_alive()
        # the client sees its error before the server has removed the session (KILL returns before it is gone)
        wait_for(lambda: source_root.value("SELECT COUNT(*) FROM information_schema.processlist WHERE id = %s",
                                           (app.connection_id,)) == 0, 5, "the killed session to leave")
    finally:
        app.close()


def test_rds_kill_query_stops_the_query_and_keeps_the_session(sandbox, master):
    app, thread = _sleeping_session(sandbox)
    try:
        master.run("CALL mysql.rds_kill_query(%s)", (app.connection_id,))
        thread.join(5)
        assert not thread.is_alive()
        assert app.value("SELECT 1") == 1
    finally:
        app.close()


def test_rds_configuration_round_trips_binlog_retention(master, rds_retention):
    master.run("CALL mysql.rds_set_configuration('binlog retention hours', 72)")
    rows = {r["name"]: r["value"] for r in master.run("CALL mysql.rds_show_configuration")}
    assert rows["binlog retention hours"] == "72"
    with pytest.raises(DatabaseError):
        master.run("CALL mysql.rds_set_configuration('no such setting', 1)")


def test_rds_external_master_procedures_make_the_source_a_replica_and_undo_it(sandbox, master, target_root):
    """The path reverse replication takes after a cutover: RDS following the new primary."""
    target_root.run("CREATE USER IF NOT EXISTS 'rds_follow'@'%%' IDENTIFIED BY %s", ("follow-pw-1",))
    target_root.run("GRANT REPLICATION SLAVE ON *.* TO 'rds_follow'@'%'")
    pos = target_root.one("SHOW MASTER STATUS")
    try:
        master.run("CALL mysql.rds_set_external_master(%s, %s, %s, %s, %s, %s, 0)",
                   ("127.0.0.1", sandbox.ports["target"], "rds_follow", "follow-pw-1", pos["File"], pos["Position"]))
        master.run("CALL mysql.rds_start_replication")
        deadline = time.monotonic() + 10
        status = {}
        while time.monotonic() < deadline:
            status = master.one("SHOW SLAVE STATUS") or {}
            if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
                break
            time.sleep(0.1)
        assert status.get("Slave_IO_Running") == "Yes", status.get("Last_IO_Error")
        assert status["Master_Port"] == sandbox.ports["target"]
        master.run("CALL mysql.rds_stop_replication")
        assert master.one("SHOW SLAVE STATUS")["Slave_IO_Running"] == "No"
    finally:
        master.run("CALL mysql.rds_reset_external_master")
        target_root.run("DROP USER IF EXISTS 'rds_follow'@'%'")
    assert master.one("SHOW SLAVE STATUS") is None


def test_no_anonymous_accounts_shadow_real_ones(source_root, target_root):
    for s in (source_root, target_root):
        assert s.value("SELECT COUNT(*) FROM mysql.user WHERE User = ''") == 0


def test_source_is_rds_like_and_target_is_a_read_only_replica_candidate(source_root, target_root):
    assert source_root.variable("binlog_format") == "ROW"
    assert source_root.variable("log_bin_trust_function_creators") == 1
    assert target_root.variable("read_only") == 1
    assert target_root.variable("log_bin") == 1 and target_root.variable("log_slave_updates") == 1
    assert source_root.variable("server_id") != target_root.variable("server_id")
    assert target_root.value("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'shop'") == 0


def test_application_reaches_the_source_through_haproxy(sandbox, source_root):
    """Counts only what it can own: the sandbox's seeded orders (ids 1..rows, which no test deletes) and the
    order it places itself, deleted afterwards; orders other tests placed on this shared source do not matter."""
    app = open_session(endpoint_as(sandbox.ports["haproxy"], sample_data.APP_USER, sandbox.secret("app")))
    placed = None
    try:
        with app:
            assert app.value("SELECT @@port") == sandbox.ports["source"]
            assert app.value("SELECT COUNT(*) FROM shop.orders WHERE id <= %s", (sandbox.rows,)) == sandbox.rows
            before = app.value("SELECT COUNT(*) FROM shop.orders")
            assert app.run("CALL shop.place_order(1, 'SKU-0001', 2, 500, @o)") == []
            placed = app.value("SELECT @o")
            assert placed > sandbox.rows
            assert app.value("SELECT COUNT(*) FROM shop.orders") == before + 1
            assert app.value("SELECT total_cents FROM shop.orders WHERE id = %s", (placed,)) == 1000  # the trigger
    finally:
        if placed is not None:
            source_root.run("DELETE FROM shop.order_lines WHERE order_id = %s", (placed,))
            source_root.run("DELETE FROM shop.orders WHERE id = %s", (placed,))
    assert "db" in sandbox.haproxy.command("show servers state mysql")


def test_code_objects_are_owned_by_the_developer_account_not_the_master_user(source_root):
    definers = source_root.run(
        "SELECT DEFINER AS d FROM information_schema.triggers WHERE trigger_schema = 'shop' UNION "
        "SELECT DEFINER FROM information_schema.views WHERE table_schema = 'shop' UNION "
        "SELECT DEFINER FROM information_schema.routines WHERE routine_schema = 'shop'")
    assert {r["d"] for r in definers} == {f"{sample_data.OWNER_USER}@%"}


def test_moto_holds_the_rds_instance_its_custom_parameter_group_and_the_route53_record(sandbox):
    settings = sandbox.aws.settings
    rds = aws_adapter.client(settings, "rds")
    instance = rds.describe_db_instances(DBInstanceIdentifier=INSTANCE_ID)["DBInstances"][0]
    assert instance["Engine"] == "mariadb" and instance["BackupRetentionPeriod"] == 7
    assert instance["DBParameterGroups"][0]["DBParameterGroupName"] == PARAMETER_GROUP
    params = rds.describe_db_parameters(DBParameterGroupName=PARAMETER_GROUP, Source="user")["Parameters"]
    assert {p["ParameterName"]: p["ParameterValue"] for p in params}["binlog_format"] == "ROW"
    route53 = aws_adapter.client(settings, "route53")
    records = route53.list_resource_record_sets(HostedZoneId=sandbox.aws.zone_id())["ResourceRecordSets"]
    cname = next(r for r in records if r["Name"] == RECORD)
    assert cname["ResourceRecords"][0]["Value"] == instance["Endpoint"]["Address"]


def test_playbook_works_as_written_with_no_variable_to_export(sandbox, monkeypatch):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    pb = load(sandbox.playbook_path)
    source_pw = secrets.resolve(pb.source, what="source.password")
    target_pw = secrets.resolve(pb.target, what="target.password")
    with open_session(endpoint_as(pb.source.port, pb.source.user, source_pw.get_secret_value())) as s:
        assert s.dialect.flavor == "mariadb"
    with open_session(endpoint_as(pb.target.port, pb.target.user, target_pw.get_secret_value())) as t:
        assert t.value("SELECT @@read_only") == 1
    with SshExecutor(pb.target.ssh) as host:
        assert host.run(["test", "-d", str(pb.target.datadir)], timeout=10).ok
    rds = aws_adapter.client(pb.aws, "rds")
    assert rds.describe_db_instances(DBInstanceIdentifier=pb.source.rds_instance_id)["DBInstances"]


def test_sandbox_up_again_changes_nothing(sandbox):
    from migrate.sandbox import sandbox as sandbox_mod

    _, result = sandbox_mod.up(sandbox.dir)
    assert [s.status for s in result.steps] == ["skipped"] * len(result.steps)
