"""`migrate plan` on real servers: each check made to fail or warn for real, with its message; the
sandbox says go; and the plan changes nothing anywhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from migrate.adapters import aws as aws_adapter
from migrate.adapters.db import quote_ident
from migrate.capabilities import heartbeat
from migrate.sandbox import sample_data
from migrate.sandbox.aws import PARAMETER_GROUP
from migrate.sandbox.mariadb import MariaDBServer
from migrate.sandbox.procs import free_port
from migrate.sandbox.workload import AppWorkload
from migrate.workflows import plan
from tests.helpers import endpoint_as, run_migrate, write_playbook
from tests.planning import FAST, check, run_plan


def test_the_sandbox_says_go_with_every_check_passing(sandbox, tmp_path):
    with heartbeat.Writer(sandbox.source.root_endpoint, 0.5, "test"):  # whatever phase earlier tests left
        time.sleep(0.7)
        result = run_plan(sandbox, tmp_path)
    assert result["verdict"] == "go", [c for c in result["checks"] if c["status"] != "pass"]
    assert all(c["status"] == "pass" for c in result["checks"])
    assert [s["step"] for s in result["plan"]["cutover"] if s["point_of_no_return"]] == ["repoint"]
    assert result["plan"]["seed"]["consistency"] == "replica" and "read replica" in result["plan"]["seed"]["why"]
    locked = run_plan(sandbox, tmp_path, seed={"consistency": "lock"})["plan"]["seed"]
    assert locked["consistency"] == "lock" and "LOCK TABLES" in locked["why"]


def test_plan_changes_nothing_on_either_server(sandbox, tmp_path, source_root, target_root):
    before = [s.one("SHOW MASTER STATUS") for s in (source_root, target_root)]
    run_plan(sandbox, tmp_path)
    assert [s.one("SHOW MASTER STATUS") for s in (source_root, target_root)] == before


def test_cli_prints_json_and_exits_0_on_go_and_1_on_no_go(sandbox, tmp_path):
    good = write_playbook(sandbox.playbook_path, tmp_path / "good.yml", **FAST)
    result = run_migrate("plan", "-p", str(good), "--json")
    assert result.returncode == 0, result.stdout[-2000:]
    doc = json.loads(result.stdout)
    assert {"checks", "plan", "estimates", "verdict"} <= set(doc) and doc["verdict"] == "go"
    bad = write_playbook(sandbox.playbook_path, tmp_path / "bad.yml", cutover={"app_users": ["nobody_here"]}, **FAST)
    result = run_migrate("plan", "-p", str(bad))
    assert result.returncode == 1 and "NO-GO" in result.stdout and "cutover.app_accounts" in result.stdout


def test_statement_binlog_format_warns_and_mixed_passes_for_native_replication(sandbox, tmp_path, set_global):
    set_global["source"]("binlog_format", "STATEMENT")
    c = check(run_plan(sandbox, tmp_path), "source.binlog_format")
    assert c["status"] == "warn" and c["evidence"].startswith("binlog_format=STATEMENT: the replica replays")
    assert "parameter group" in c["fix"] and "MIXED is enough" in c["fix"]
    set_global["source"]("binlog_format", "MIXED")
    c = check(run_plan(sandbox, tmp_path), "source.binlog_format")
    assert c["status"] == "pass" and "native replication replays it" in c["evidence"]


def test_minimal_row_image_fails(sandbox, tmp_path, set_global):
    set_global["source"]("binlog_row_image", "MINIMAL")
    assert check(run_plan(sandbox, tmp_path), "source.binlog_row_image")["status"] == "fail"


def test_unset_rds_binlog_retention_fails_with_the_call_to_make(sandbox, tmp_path, master, rds_retention):
    master.run("CALL mysql.rds_set_configuration('binlog retention hours', NULL)")
    c = check(run_plan(sandbox, tmp_path), "source.binlog_retention")
    assert c["status"] == "fail" and "NULL" in c["evidence"]
    assert "CALL mysql.rds_set_configuration('binlog retention hours'," in c["fix"]


def test_a_replication_account_without_its_grant_passes_only_when_the_source_user_can_grant_it(
        sandbox, tmp_path, master, source_root):
    try:
        master.run("CREATE USER 'repl_plan'@'%%' IDENTIFIED BY %s", ("x-repl-plan-1",))
        source_root.run("CREATE USER 'plan_reader'@'%%' IDENTIFIED BY %s", ("plan-reader-pw-1",))
        source_root.run("GRANT SELECT, PROCESS, SHOW VIEW, REPLICATION CLIENT, SLAVE MONITOR ON *.* "
                        "TO 'plan_reader'@'%'")
        source_root.run("GRANT EXECUTE ON PROCEDURE mysql.rds_show_configuration TO 'plan_reader'@'%'")
        (tmp_path / "reader.pw").write_text("plan-reader-pw-1")
        grantable = run_plan(sandbox, tmp_path, replication={"user": "repl_plan"})
        not_grantable = run_plan(sandbox, tmp_path, replication={"user": "repl_plan"},
                                 source={"user": "plan_reader", "password_file": str(tmp_path / "reader.pw")})
    finally:
        master.run("DROP USER IF EXISTS 'repl_plan'@'%'")
        source_root.run("DROP USER IF EXISTS 'plan_reader'@'%'")
    c = check(grantable, "source.replication_account")
    assert c["status"] == "pass" and "migrate start does" in c["evidence"]
    c = check(not_grantable, "source.replication_account")
    assert c["status"] == "fail" and "cannot grant it" in c["evidence"] and "GRANT REPLICATION SLAVE" in c["fix"]


def test_seed_databases_naming_a_database_the_source_lacks_fails(sandbox, tmp_path):
    c = check(run_plan(sandbox, tmp_path, seed={"databases": ["shop", "no_such_db"]}), "source.databases")
    assert c["status"] == "fail" and "no_such_db" in c["evidence"] and "shop" not in c["evidence"]


def test_tables_without_primary_key_myisam_and_orphan_definers_warn(sandbox, tmp_path, source_root, schema):
    db = quote_ident(schema)
    source_root.run(f"CREATE DATABASE {db}")
    source_root.run(f"CREATE TABLE {db}.no_pk (a INT, b INT) ENGINE=InnoDB")
    source_root.run(f"CREATE TABLE {db}.old_stuff (id INT PRIMARY KEY) ENGINE=MyISAM")
    source_root.run(f"CREATE DEFINER='ghost'@'%' SQL SECURITY DEFINER VIEW {db}.v AS SELECT 1 AS one")
    result = run_plan(sandbox, tmp_path)
    assert check(result, "source.primary_keys")["status"] == "warn"
    assert f"{schema}.no_pk" in check(result, "source.primary_keys")["evidence"]
    assert f"{schema}.old_stuff (MyISAM)" in check(result, "source.engines")["evidence"]
    assert check(result, "source.definers")["status"] == "warn" and "'ghost'@'%'" in check(result, "source.definers")["evidence"]
    assert result["verdict"] == "go"  # warnings inform; they do not stop


def test_a_long_transaction_warns(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(plan.inspector, "long_transactions",
                        lambda s, older_than_s=60, f=plan.inspector.long_transactions: f(s, 1))
    with sandbox.source.root() as holder:
        holder.run("START TRANSACTION")
        holder.run("SELECT COUNT(*) FROM shop.orders FOR UPDATE")
        time.sleep(2.5)  # innodb_trx's trx_started has whole seconds
        c = check(run_plan(sandbox, tmp_path), "source.long_transactions")
        holder.run("ROLLBACK")
    assert c["status"] == "warn" and f"thread {holder.connection_id}" in c["evidence"], c


def test_a_target_with_a_user_database_fails_unless_allowed(sandbox, tmp_path, target_root, schema):
    target_root.run("SET SESSION sql_log_bin = 0")
    target_root.run(f"CREATE DATABASE {quote_ident(schema)}")
    assert check(run_plan(sandbox, tmp_path), "target.empty")["status"] == "fail"
    allowed = run_plan(sandbox, tmp_path, allow_nonempty=True)
    assert check(allowed, "target.empty")["status"] == "warn" and schema in check(allowed, "target.empty")["evidence"]


def test_a_writable_target_fails(sandbox, tmp_path, set_global):
    set_global["target"]("read_only", 0)
    c = check(run_plan(sandbox, tmp_path), "target.read_only")
    assert c["status"] == "fail" and "SET GLOBAL read_only = ON" in c["fix"]


def test_different_settings_on_the_target_warn(sandbox, tmp_path, set_global):
    set_global["target"]("sql_mode", "ANSI_QUOTES")
    set_global["target"]("max_allowed_packet", 1024 * 1024)
    c = check(run_plan(sandbox, tmp_path), "target.settings")
    assert c["status"] == "warn" and "sql_mode" in c["evidence"] and "max_allowed_packet" in c["evidence"]


def test_an_unknown_ssh_host_fails_the_target_host_check(sandbox, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    c = check(run_plan(sandbox, tmp_path, target={"ssh": {"known_hosts": str(empty)}}), "target.host")
    assert c["status"] == "fail" and "known_hosts" in c["evidence"]


def test_a_source_the_target_host_cannot_reach_fails(sandbox, tmp_path):
    c = check(run_plan(sandbox, tmp_path, replication={"source_host": "127.0.0.3"}), "network.target_to_source")
    assert c["status"] == "fail" and "security group" in c["fix"]


def test_physical_seed_from_rds_is_refused_with_the_reason(sandbox, tmp_path):
    result = run_plan(sandbox, tmp_path, seed={"method": "physical"})
    assert check(result, "seed.method")["status"] == "fail" and "datadir" in check(result, "seed.method")["evidence"]
    assert "impossible from RDS" in result["plan"]["seed"]["why"]


def test_cutover_readiness_failures(sandbox, tmp_path, master):
    try:
        master.run("CREATE ROLE plan_writer")
        master.run("CREATE USER 'role_app'@'%%' IDENTIFIED BY %s", ("role-app-pw-1",))
        master.run("GRANT plan_writer TO 'role_app'@'%'")
        master.run("CREATE USER 'reader'@'%%' IDENTIFIED BY %s", ("reader-pw-1",))
        master.run("GRANT SELECT ON shop.* TO 'reader'@'%'")
        assert check(run_plan(sandbox, tmp_path, cutover={"app_users": ["role_app"]}),
                     "cutover.app_accounts")["status"] == "fail"
        reader = check(run_plan(sandbox, tmp_path, cutover={"app_users": ["reader"]}), "cutover.app_accounts")
        assert reader["status"] == "warn" and "no write privilege" in reader["evidence"]
    finally:
        master.run("DROP USER IF EXISTS 'role_app'@'%'")
        master.run("DROP USER IF EXISTS 'reader'@'%'")
        master.run("DROP ROLE IF EXISTS plan_writer")
    assert check(run_plan(sandbox, tmp_path, cutover={"write_block": "read_only"}), "cutover.write_block")["status"] == "fail"
    broken = run_plan(sandbox, tmp_path, cutover={"repoint": {"haproxy": {"socket": str(tmp_path / "no.sock")}}})
    assert check(broken, "cutover.repoint")["status"] == "fail"
    # a password no other text contains: once read it is a known secret, masked in this process's output
    (tmp_path / "wrong.pw").write_text("not-the-probe-pw-1")
    wrong = run_plan(sandbox, tmp_path, probe={"password_file": str(tmp_path / "wrong.pw")})
    assert check(wrong, "cutover.probe")["status"] == "fail" and "(1045)" in check(wrong, "cutover.probe")["evidence"]


@pytest.fixture
def own_orders(source_root) -> Iterator[None]:
    """For a test that places orders in the shared sandbox's shop: they are deleted afterwards (every order
    past the last one there was before), so that no other test sees them."""
    last = source_root.value("SELECT COALESCE(MAX(id), 0) FROM shop.orders")
    yield
    source_root.run("DELETE FROM shop.order_lines WHERE order_id > %s", (last,))
    source_root.run("DELETE FROM shop.orders WHERE id > %s", (last,))


def test_writes_faster_than_the_replica_applies_mean_no_go(sandbox, tmp_path, own_orders):
    load_ = AppWorkload(lambda: endpoint_as(sandbox.ports["haproxy"], sample_data.APP_USER, sandbox.secret("app")),
                        rate=200, threads=2).start()
    try:
        result = run_plan(sandbox, tmp_path, estimates={"binlog_sample_s": 0.5, "apply_mb_per_s": 0.0001})
    finally:
        load_.stop()
    assert check(result, "estimate.catch_up")["status"] == "fail" and result["estimates"]["catch_up_s"] is None


@pytest.fixture
def bad_rds_instances(sandbox):
    rds = aws_adapter.client(sandbox.aws.settings, "rds")
    rds.create_db_instance(DBInstanceIdentifier="shop-nobackups", Engine="mariadb", EngineVersion="10.11.19",
                           DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="admin",
                           MasterUserPassword="whatever-1", BackupRetentionPeriod=0, Port=sandbox.ports["source"])
    rds.create_db_parameter_group(DBParameterGroupName="mixed-binlog", DBParameterGroupFamily="mariadb10.11",
                                  Description="binlog_format MIXED")
    rds.modify_db_parameter_group(DBParameterGroupName="mixed-binlog", Parameters=[
        {"ParameterName": "binlog_format", "ParameterValue": "MIXED", "ApplyMethod": "immediate"}])
    rds.create_db_instance(DBInstanceIdentifier="shop-mixed", Engine="mariadb", EngineVersion="10.11.19",
                           DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="admin",
                           MasterUserPassword="whatever-1", BackupRetentionPeriod=7, Port=sandbox.ports["source"],
                           DBParameterGroupName="mixed-binlog")
    yield
    for name in ("shop-nobackups", "shop-mixed"):
        rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
    rds.delete_db_parameter_group(DBParameterGroupName="mixed-binlog")


def test_rds_without_backups_on_a_default_parameter_group_and_closed_security_group_fails(sandbox, tmp_path,
                                                                                         bad_rds_instances):
    result = run_plan(sandbox, tmp_path, source={"rds_instance_id": "shop-nobackups"})
    assert check(result, "rds.backups")["status"] == "fail" and "--backup-retention-period" in check(result, "rds.backups")["fix"]
    group = check(result, "rds.parameter_group")
    assert group["status"] == "fail" and "default." in group["evidence"]
    assert check(result, "rds.security_group")["status"] == "warn"
    mixed = check(run_plan(sandbox, tmp_path, source={"rds_instance_id": "shop-mixed"}), "rds.binlog_format")
    assert mixed["status"] == "pass" and "binlog_format=MIXED: native replication" in mixed["evidence"]
    missing = check(run_plan(sandbox, tmp_path, source={"rds_instance_id": "no-such-db"}), "rds.instance")
    assert missing["status"] == "fail" and "not found" in missing["evidence"]
    assert PARAMETER_GROUP  # the sandbox's own instance keeps its custom group (see the go test)


def test_a_self_managed_source_without_binlog_and_a_bare_target_fail(sandbox, tmp_path):
    """Servers started wrong from the beginning: no binary log on the source and a target without binary
    logging or log_slave_updates, writable, with the source's server_id."""
    base = tmp_path / "srv"
    source = MariaDBServer("bare-source", base / "s", free_port(), server_id=2,
                           options={"skip-log-bin": None, "expire-logs-days": "0"})
    target = MariaDBServer("bare-target", base / "t", free_port(), server_id=2, options={"skip-log-bin": None})
    try:
        source.init()
        target.init()
        for server, pw in ((source, "bare-src-pw-1"), (target, "bare-tgt-pw-1")):
            with server.root() as root:
                root.run("CREATE USER 'dba'@'127.0.0.1' IDENTIFIED BY %s", (pw,))
                root.run("GRANT ALL PRIVILEGES ON *.* TO 'dba'@'127.0.0.1' WITH GRANT OPTION")
                root.run("CREATE USER 'app_rw'@'%%' IDENTIFIED BY %s", (sandbox.secret("app"),))
                root.run("GRANT SELECT, INSERT ON *.* TO 'app_rw'@'%'")
        with source.root() as root:  # itself a (stopped) replica of some other server
            root.run("CHANGE MASTER TO MASTER_HOST='127.0.0.9', MASTER_PORT=3306, MASTER_USER='x'")
        with target.root() as root:  # a leftover named connection and a filter
            root.run("CHANGE MASTER 'old' TO MASTER_HOST='127.0.0.8', MASTER_PORT=3306, MASTER_USER='x'")
            root.run("SET GLOBAL replicate_do_db = 'shop'")
        (tmp_path / "s.pw").write_text("bare-src-pw-1")
        (tmp_path / "t.pw").write_text("bare-tgt-pw-1")
        bare = {"source": {"kind": "mysql", "host": "127.0.0.1", "port": source.port, "user": "dba",
                           "password_file": str(tmp_path / "s.pw")},
                "target": {"port": target.port, "user": "dba", "password_file": str(tmp_path / "t.pw"),
                           "datadir": str(target.datadir)},
                "probe": {"host": "127.0.0.1", "port": source.port}}
        result = run_plan(sandbox, tmp_path, **bare)
        no_way_back = run_plan(sandbox, tmp_path, **bare, cutover={"reverse_replication": False})
    finally:
        source.destroy()
        target.destroy()
    assert "source.binary_log" in result["by_id"], [c for c in result["checks"] if c["status"] != "pass"]
    assert check(result, "source.binary_log")["status"] == "fail"
    assert check(result, "source.server_id")["status"] == "fail" and "both have server_id=2" in \
        check(result, "source.server_id")["evidence"]
    assert check(result, "target.binary_log")["status"] == "fail"
    assert check(result, "target.log_replica_updates")["status"] == "fail"
    assert check(result, "target.read_only")["status"] == "fail"
    assert check(result, "source.databases")["status"] == "fail" and "no user database" in \
        check(result, "source.databases")["evidence"]
    own = check(result, "source.own_replication")
    assert own["status"] == "fail" and "127.0.0.9:3306 (stopped)" in own["evidence"] and "=OFF" in own["evidence"]
    other = check(result, "target.other_sources")
    assert other["status"] == "fail" and "127.0.0.8:3306 (stopped, connection old)" in other["evidence"]
    filters = check(result, "target.replication_filters")
    assert filters["status"] == "fail" and "replicate_do_db=shop" in filters["evidence"]
    assert check(result, "source.log_replica_updates")["status"] == "warn"  # MariaDB's default: OFF
    assert check(no_way_back, "source.log_replica_updates")["status"] == "pass"
    assert check(no_way_back, "target.binary_log")["status"] == "warn"
    assert check(no_way_back, "target.log_replica_updates")["status"] == "warn"
    assert check(result, "target.parallel_apply")["status"] == "warn"  # MariaDB's default: one applier thread
    assert "slave_parallel_threads=0" in check(result, "target.parallel_apply")["evidence"]
    assert "rds.instance" not in result["by_id"]  # a self-managed source has no RDS checks
    assert result["verdict"] == "no-go"


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 64 KiB tmpfs: a target volume too small for the seed."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_target_volume_too_small_for_the_seed_fails(sandbox, tmp_path, tiny_filesystem):
    c = check(run_plan(sandbox, tmp_path, target={"datadir": str(tiny_filesystem / "mysql")}), "target.disk")
    assert c["status"] == "fail" and str(tiny_filesystem) in c["evidence"] and "grow the volume" in c["fix"]
