"""The write blocks a DBA uses besides revoke_and_kill, each on a sandbox wired for it, under an application
placing ~200 orders/s through HAProxy: `read_only` on a self-managed source, `parameter_group` on the RDS-like
source (the sandbox's applier stands for AWS applying the group). Each cutover loses no acknowledged order and
its effect is read on the servers and in moto; each injected failure before the point of no return rolls back,
exits 3, and leaves the original state, checked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from migrate.adapters import aws as aws_adapter
from migrate.adapters.db import DatabaseError, connect
from migrate.adapters.haproxy import HaproxyAdmin
from migrate.capabilities import replication
from migrate.capabilities.write_block import ParameterGroupApi
from migrate.sandbox import rds_control, sample_data
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.aws import INSTANCE_ID, PARAMETER_GROUP
from migrate.sandbox.haproxy import BACKEND, SERVER
from migrate.sandbox.sandbox import Options
from tests.aws_faults import AwsFaults
from tests.helpers import endpoint_as, open_session, run_migrate, wait_for
from tests.killing import Case, kill_then_recover
from tests.switching import Load, fast_playbook, missing_orders, phase_of, started_sandbox, to_phase

RATE = 200


def cutover_under_load(sb, playbook, command: str = "cutover"):
    """The command's result, with `said`: every step's sentence (or the error's message), and the load's result."""
    with Load(sb, rate=RATE) as load:
        result = run_migrate(command, "-p", str(playbook), "--yes", "--json")
    out = json.loads(result.stdout)
    result.said = out.get("message") or "\n".join(s["message"] for s in out["report"]["steps"])
    return result, load.result


def app_write_error(sb, server: str) -> int | None:
    """The error code of an application write straight on `server` (None: it was written)."""
    with connect(endpoint_as(sb.ports[server], sample_data.APP_USER, sb.secret("app")), attempts=1) as app:
        try:
            app.run("CALL shop.place_order(1, 'SKU-0001', 1, 100, @o)")
        except DatabaseError as exc:
            return exc.code
    return None


def assert_nothing_lost(server, writes) -> None:
    with server.root() as s:
        assert writes.acked_order_ids and missing_orders(s, writes.acked_order_ids) == []


def assert_back_on_source(sb, writes) -> None:
    """The original state: the application writes on the source, the target is a healthy read-only replica."""
    assert phase_of(sb).phase in ("replicating", "rolled_back") and phase_of(sb).app_on == "source"
    assert app_write_error(sb, "source") is None
    assert_nothing_lost(sb.source, writes)
    with sb.target.root() as t:
        assert t.variable("read_only") == 1 and replication.read_status(t).healthy


# -- parameter_group (RDS) --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator:
    with started_sandbox(2000, Options(write_block="parameter_group")) as sb:
        sb.rds_applier.set_delay(0.2)
        yield sb


def group_value(sb) -> str | None:
    return ParameterGroupApi(sb.aws.settings, INSTANCE_ID).user_value(PARAMETER_GROUP, "read_only")


def test_parameter_group_cutover_loses_nothing_and_rollback_resets_the_group(pg, tmp_path):
    playbook = fast_playbook(pg, tmp_path)
    result, writes = cutover_under_load(pg, playbook)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "read_only=1 in parameter group" in result.said
    assert group_value(pg) == "1" and app_write_error(pg, "source") == 1290  # the old primary: read-only
    assert_nothing_lost(pg.target, writes)

    result, writes = cutover_under_load(pg, playbook, "rollback")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert group_value(pg) is None  # reset: the engine default, as before the cutover
    assert_back_on_source(pg, writes)


def test_parameter_group_change_refused_by_aws_rolls_back_and_exits_3(pg, tmp_path):
    to_phase(pg, fast_playbook(pg, tmp_path), "replicating")
    with AwsFaults(pg.aws.endpoint_url) as faults:
        faults.fail_rds_action(b"ModifyDBParameterGroup")
        result, writes = cutover_under_load(pg, fast_playbook(pg, tmp_path, aws={"endpoint_url": faults.url}))
    assert result.returncode == 3, result.stdout + result.stderr[-3000:]
    assert "InvalidDBParameterGroupState" in result.said and "rolled back" in result.said
    assert faults.failed >= 1 and group_value(pg) is None
    assert_back_on_source(pg, writes)


def test_parameter_group_that_never_takes_effect_rolls_back_within_the_timeout(pg, tmp_path):
    to_phase(pg, fast_playbook(pg, tmp_path), "replicating")
    pg.rds_applier.set_delay(None)  # AWS never applies it
    try:
        result, writes = cutover_under_load(pg, fast_playbook(pg, tmp_path, cutover={"timeout_s": 2}))
    finally:
        pg.rds_applier.set_delay(0.2)
    assert result.returncode == 3, result.stdout + result.stderr[-3000:]
    assert "still reads read_only = 0 2 s after" in result.said and "rolled back" in result.said
    assert group_value(pg) is None  # put back: it must not apply later, behind the application's back
    assert_back_on_source(pg, writes)


@pytest.mark.parametrize("case", [
    Case("cutover", "block_writes", "middle", "rollback"),  # read_only=1 set in the group, maybe not yet applied
    Case("rollback", "block_writes", "middle", "cutover"),  # the target's read_only ON, the group still 1
    Case("rollback", "open_writes", "middle", "rollback"),  # repointed to the source, the group not yet put back
], ids=str)
def test_parameter_group_switch_killed_in_its_own_steps_ends_done_or_undone_with_the_group_to_match(pg, tmp_path,
                                                                                                    case):
    on = kill_then_recover(pg, fast_playbook(pg, tmp_path), case)
    assert group_value(pg) == ("1" if on == "target" else None)
    assert app_write_error(pg, "source") == (1290 if on == "target" else None)


# -- read_only (self-managed) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ro() -> Iterator:
    """The self-managed sandbox, its playbook run as written: `migrate plan` then `migrate start` (kept for the
    test that reads them)."""
    with sandbox_mod.temporary(2000, options=Options(source="self-managed", write_block="read_only")) as sb:
        sb.as_written = {command: run_migrate(command, "-p", str(sb.playbook_path), "--json")
                         for command in ("plan", "start")}
        yield sb


def test_the_self_managed_sandbox_plans_go_and_starts_a_physical_replica_as_written(ro):
    """An ordinary MariaDB (no RDS emulation) administered by an account with every privilege, seeded physically
    over SSH."""
    plan, started = ro.as_written["plan"], ro.as_written["start"]
    assert plan.returncode == 0 and json.loads(plan.stdout)["verdict"] == "go", plan.stdout[-3000:]
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-2000:]
    seeded = next(s for s in json.loads(started.stdout)["steps"] if s["name"] == "seed")["message"]
    assert "physically with mariadb-backup" in seeded
    with ro.source.root() as s, ro.target.root() as t:
        assert s.value("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = 'mysql' "
                       "AND routine_name LIKE 'rds\\_%%'") == 0
        assert "ALL PRIVILEGES" in s.one("SHOW GRANTS FOR 'admin'@'%'")["Grants for admin@%"]
        assert t.one(t.dialect.replica_status())["Master_Port"] == ro.ports["source"]
        assert replication.read_status(t).healthy and t.variable("read_only") == 1


def test_read_only_cutover_loses_nothing_and_rollback_makes_the_source_writable(ro, tmp_path):
    """With the repoint through HAProxy's runtime API on its own host, over SSH (haproxy via_ssh)."""
    ssh = {"host": "127.0.0.1", "port": ro.ssh.port, "user": ro.ssh.user, "key_file": str(ro.ssh.client_key),
           "known_hosts": str(ro.ssh.known_hosts)}
    haproxy = {"socket": str(ro.haproxy.admin_socket), "backend": BACKEND, "server": SERVER, "via_ssh": ssh}
    playbook = fast_playbook(ro, tmp_path, cutover={"repoint": {"method": "haproxy", "haproxy": haproxy}})
    result, writes = cutover_under_load(ro, playbook)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "read_only ON in" in result.said and f"admin.sock on {ro.ssh.user}@127.0.0.1:{ro.ssh.port}" in result.said
    assert HaproxyAdmin(ro.haproxy.admin_socket).server_state(BACKEND, SERVER).port == ro.ports["target"]
    assert app_write_error(ro, "source") == 1290
    assert_nothing_lost(ro.target, writes)
    result, writes = cutover_under_load(ro, playbook, "rollback")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert_back_on_source(ro, writes)


def test_read_only_held_up_by_a_long_statement_gives_up_at_its_timeout_and_rolls_back(ro, tmp_path):
    """SET GLOBAL read_only waits for the write statements in flight (orchestrator #1127): one running for 20 s
    must not hold the application's writes for 20 s."""
    to_phase(ro, fast_playbook(ro, tmp_path), "replicating")
    with ro.source.root() as root:
        root.run("CREATE TABLE IF NOT EXISTS shop.held (id INT PRIMARY KEY)")
    holder = ro.source.root()
    running = threading.Thread(target=lambda: _quietly(holder, "INSERT INTO shop.held SELECT SLEEP(20)"),
                               daemon=True)
    running.start()
    try:
        result, writes = cutover_under_load(ro, fast_playbook(ro, tmp_path, cutover={"timeout_s": 2}))
    finally:
        with ro.source.root() as root:
            root.run(f"KILL {holder.connection_id}")
        running.join(10)
    assert result.returncode == 3, result.stdout + result.stderr[-3000:]
    assert "waited 2 s for the commits in flight and gave up" in result.said and "rolled back" in result.said
    with ro.source.root() as root:
        assert root.variable("read_only") == 0
    assert_back_on_source(ro, writes)


@pytest.mark.parametrize("case", [
    Case("cutover", "block_writes", "middle", "rollback"),  # read_only ON, the sessions not yet killed
    Case("cutover", "open_writes", "middle", "cutover"),  # repointed, the target not yet writable
    Case("rollback", "open_writes", "middle", "rollback"),  # repointed back, the source still read-only
], ids=str)
def test_read_only_switch_killed_in_its_own_steps_ends_done_or_undone(ro, tmp_path, case):
    on = kill_then_recover(ro, fast_playbook(ro, tmp_path), case)
    with ro.source.root() as s, ro.target.root() as t:
        assert (s.variable("read_only"), t.variable("read_only")) == ((1, 0) if on == "target" else (0, 1))


def _quietly(session, sql: str) -> None:
    try:
        session.run(sql)
    except DatabaseError:
        pass  # killed at the end of the test
    finally:
        session.close()


# -- migrate plan: each method's preconditions, read on the variants ------------------------------------


def plan_checks(playbook) -> dict[str, dict]:
    result = run_migrate("plan", "-p", str(playbook), "--json")
    assert result.returncode in (0, 1), result.stdout + result.stderr[-3000:]
    return {c["id"]: c for c in json.loads(result.stdout)["checks"]}


def test_plan_warns_that_a_parameter_groups_latency_is_awss_and_fails_a_default_group(pg, tmp_path):
    playbook = fast_playbook(pg, tmp_path, estimates={"binlog_sample_s": 0.1})
    to_phase(pg, playbook, "replicating")
    check = plan_checks(playbook)["cutover.write_block"]
    assert check["status"] == "warn" and f"parameter group {PARAMETER_GROUP} can be modified" in check["evidence"]
    assert "a rollback waits for AWS to apply it back with writes blocked" in check["fix"]
    rds = ParameterGroupApi(pg.aws.settings, INSTANCE_ID)
    groups = rds._call("list the groups", "describe_db_parameter_groups")["DBParameterGroups"]
    if "default.mariadb10.11" not in {g["DBParameterGroupName"] for g in groups}:  # AWS has it; moto makes none
        rds._call("create the default group", "create_db_parameter_group", DBParameterGroupName="default.mariadb10.11",
                  DBParameterGroupFamily="mariadb10.11", Description="Default parameter group for mariadb10.11")
    rds._call("attach the default group", "modify_db_instance", DBInstanceIdentifier=INSTANCE_ID,
              DBParameterGroupName="default.mariadb10.11", ApplyImmediately=True)
    try:
        check = plan_checks(playbook)["cutover.write_block"]
    finally:
        rds._call("attach the custom group again", "modify_db_instance", DBInstanceIdentifier=INSTANCE_ID,
                  DBParameterGroupName=PARAMETER_GROUP, ApplyImmediately=True)
    assert check["status"] == "fail" and "uses the default parameter group default.mariadb10.11" in check["evidence"]
    assert rds.group() == PARAMETER_GROUP


def test_plan_fails_a_parameter_group_another_instance_shares(pg, tmp_path):
    """read_only=1 in a shared group would stop the other instance's writes too."""
    playbook = fast_playbook(pg, tmp_path, estimates={"binlog_sample_s": 0.1})
    to_phase(pg, playbook, "replicating")
    rds = ParameterGroupApi(pg.aws.settings, INSTANCE_ID)
    rds._call("create another instance", "create_db_instance", DBInstanceIdentifier="billing-prod", Engine="mariadb",
              EngineVersion="10.11.6", DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="admin",
              MasterUserPassword="billing-pw-123", DBParameterGroupName=PARAMETER_GROUP)
    try:
        check = plan_checks(playbook)["cutover.write_block"]
    finally:
        rds._call("delete it", "delete_db_instance", DBInstanceIdentifier="billing-prod", SkipFinalSnapshot=True)
    assert check["status"] == "fail" and "shared with RDS instance(s) billing-prod" in check["evidence"]
    assert plan_checks(playbook)["cutover.write_block"]["status"] == "warn"  # back to its own group


def test_plan_fails_read_only_on_rds_and_parameter_group_off_rds(pg, ro, tmp_path):
    on_rds = plan_checks(fast_playbook(pg, tmp_path, cutover={"write_block": "read_only"},
                                       estimates={"binlog_sample_s": 0.1}))["cutover.write_block"]
    assert on_rds["status"] == "fail" and "its master user cannot SET GLOBAL read_only" in on_rds["evidence"]
    off_rds = plan_checks(fast_playbook(ro, tmp_path, cutover={"write_block": "parameter_group"},
                                        estimates={"binlog_sample_s": 0.1}))["cutover.write_block"]
    assert off_rds["status"] == "fail" and "not RDS" in off_rds["evidence"]


def test_plan_fails_read_only_when_an_application_account_writes_through_it_or_migrate_cannot_set_it(ro, tmp_path):
    playbook = fast_playbook(ro, tmp_path, estimates={"binlog_sample_s": 0.1})
    to_phase(ro, playbook, "replicating")
    assert plan_checks(playbook)["cutover.write_block"]["status"] == "pass"
    with ro.source.root() as root:
        root.run("SET SESSION sql_log_bin = 0")
        root.run(f"GRANT READ_ONLY ADMIN ON *.* TO '{sample_data.APP_USER}'@'%'")
        try:
            check = plan_checks(playbook)["cutover.write_block"]
        finally:
            root.run(f"REVOKE READ_ONLY ADMIN ON *.* FROM '{sample_data.APP_USER}'@'%'")
    assert check["status"] == "fail" and "may write while read_only is ON" in check["evidence"]
    with ro.source.root() as root:
        root.run("SET SESSION sql_log_bin = 0")
        root.run("CREATE OR REPLACE USER 'weak_dba'@'%' IDENTIFIED BY 'weak-dba-pw-1'")
        # all that plan reads with, and kill rights, but not READ_ONLY ADMIN
        root.run("GRANT SELECT, PROCESS, SHOW DATABASES, SHOW VIEW, EVENT, TRIGGER, EXECUTE, CREATE USER, BINLOG MONITOR, "
                 "SLAVE MONITOR, REPLICATION SLAVE, CONNECTION ADMIN ON *.* TO 'weak_dba'@'%' WITH GRANT OPTION")
    (tmp_path / "weak.pw").write_text("weak-dba-pw-1")
    try:
        check = plan_checks(fast_playbook(ro, tmp_path, estimates={"binlog_sample_s": 0.1},
                                          source={"user": "weak_dba", "password_file": str(tmp_path / "weak.pw")})
                            )["cutover.write_block"]
    finally:
        with ro.source.root() as root:
            root.run("SET SESSION sql_log_bin = 0")
            root.run("DROP USER 'weak_dba'@'%'")
    assert check["status"] == "fail" and "cannot set read_only" in check["evidence"]

# -- the sandbox's RDS control plane (what stands for AWS applying a parameter group) ----------------------
# read_only set in the instance's parameter group (moto, through boto3) reaches the real source server after the
# applier's delay, and leaves it again on reset; the sandbox's moto resets parameters and refuses to change a
# default group, as AWS does. Each test leaves the source writable and the group as it found it.


READ_ONLY_ERROR = 1290  # "The MariaDB server is running with the --read-only option"


def _set(rds, value: str) -> None:
    rds.modify_db_parameter_group(DBParameterGroupName=PARAMETER_GROUP, Parameters=[
        {"ParameterName": "read_only", "ParameterValue": value, "ApplyMethod": "immediate"}])


def _reset(rds) -> None:
    rds.reset_db_parameter_group(DBParameterGroupName=PARAMETER_GROUP, Parameters=[
        {"ParameterName": "read_only", "ApplyMethod": "immediate"}])


def _source_read_only(pg) -> int:
    with pg.source.root() as root:
        return root.value("SELECT @@global.read_only")


def _seconds_until(predicate, timeout: float) -> float:
    began = time.monotonic()
    wait_for(predicate, timeout, "the source's read_only")
    return time.monotonic() - began


@pytest.fixture
def rds(pg) -> Iterator:
    """boto3 against the sandbox's moto; afterwards read_only leaves the group, the applier's delay is what it
    was, and the source is writable (the tests share this pg)."""
    applier = pg.rds_applier
    before = applier.delay()
    client = aws_adapter.client(pg.aws.settings, "rds")
    yield client
    if not pg.aws.running():  # a test stopped moto: start and provision it again, as `pg up` does
        sandbox_mod.up(pg.dir)
    _reset(client)
    applier.set_delay(0)
    wait_for(lambda: _source_read_only(pg) == 0, 5, "the source to be writable again")
    applier.set_delay(before)


def test_read_only_in_the_parameter_group_blocks_the_applications_writes_on_the_source(pg, rds):
    pg.rds_applier.set_delay(0)
    _set(rds, "1")
    took = _seconds_until(lambda: _source_read_only(pg) == 1, 0 + 1)
    app = endpoint_as(pg.ports["source"], sample_data.APP_USER, pg.secret("app"))
    with open_session(app) as s, pytest.raises(DatabaseError) as exc:
        s.run("UPDATE shop.orders SET status = status WHERE id = 1")
    assert exc.value.code == READ_ONLY_ERROR
    event = pg.rds_applier.state()["events"][-1]
    assert (event["parameter"], event["value"], event["group"]) == ("read_only", "1", PARAMETER_GROUP)
    assert took < 1


def test_reset_gives_the_source_the_engine_default_back(pg, rds):
    pg.rds_applier.set_delay(0)
    _set(rds, "1")
    _seconds_until(lambda: _source_read_only(pg) == 1, 1)
    _reset(rds)
    _seconds_until(lambda: _source_read_only(pg) == 0, 1)
    assert "read_only" not in {p["ParameterName"] for p in
                               rds.describe_db_parameters(DBParameterGroupName=PARAMETER_GROUP)["Parameters"]}


def test_a_delay_of_one_second_holds_the_change_back(pg, rds):
    pg.rds_applier.set_delay(1)
    time.sleep(0.1)  # the applier reads the delay at its next poll
    _set(rds, "1")
    time.sleep(0.5)
    assert _source_read_only(pg) == 0
    took = 0.5 + _seconds_until(lambda: _source_read_only(pg) == 1, 2)
    assert 1.0 <= took < 2.0
    assert pg.rds_applier.state()["events"][-1]["after_s"] >= 1.0


def test_never_sees_the_change_and_never_applies_it(pg, rds):
    pg.rds_applier.set_delay(None)
    time.sleep(0.1)
    _set(rds, "1")
    wait_for(lambda: pg.rds_applier.state().get("pending", {}).get("read_only", {}).get("value") == "1", 3,
             "the applier to see the change")
    time.sleep(1.5)
    assert _source_read_only(pg) == 0


def test_the_applier_outlives_a_moto_restart_and_applies_what_the_new_moto_says(pg, rds):
    applier = pg.rds_applier
    applier.set_delay(0)
    pg.aws.stop()
    wait_for(lambda: "cannot read the parameter group from moto" in (applier.state().get("error") or ""), 5,
             "the applier to say that moto is gone")
    assert applier.running()
    sandbox_mod.up(pg.dir)  # the aws step starts and provisions moto again; the applier's step is done
    wait_for(lambda: applier.state().get("error") is None, 5, "the applier to read moto again")
    client = aws_adapter.client(pg.aws.settings, "rds")
    _set(client, "1")
    _seconds_until(lambda: _source_read_only(pg) == 1, 1)
    assert "recovered: reading the parameter group from moto works again" in applier.log_file.read_text()


def test_the_sandboxs_moto_resets_parameters_and_refuses_default_groups_as_aws_does(pg):
    # another region of the same moto: nothing the other tests see
    settings = pg.aws.settings.model_copy(update={"region": "eu-west-1"})
    rds = aws_adapter.client(settings, "rds")
    rds.create_db_parameter_group(DBParameterGroupName="pg-reset", DBParameterGroupFamily="mariadb10.11",
                                  Description="reset test")
    rds.modify_db_parameter_group(DBParameterGroupName="pg-reset", Parameters=[
        {"ParameterName": n, "ParameterValue": "1", "ApplyMethod": "immediate"} for n in ("read_only", "max_connections")])
    listed = rds.describe_db_parameters(DBParameterGroupName="pg-reset", Source="user")["Parameters"]
    assert {(p["ParameterName"], p["Source"]) for p in listed} == {("read_only", "user"), ("max_connections", "user")}
    assert rds.describe_db_parameters(DBParameterGroupName="pg-reset", Source="engine-default")["Parameters"] == []
    rds.reset_db_parameter_group(DBParameterGroupName="pg-reset", ResetAllParameters=True)
    assert rds.describe_db_parameters(DBParameterGroupName="pg-reset")["Parameters"] == []
    rds.create_db_instance(DBInstanceIdentifier="on-default", Engine="mariadb", EngineVersion="10.11.6",
                           DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="admin",
                           MasterUserPassword="not-a-secret-1")
    default = rds.describe_db_instances(DBInstanceIdentifier="on-default")["DBInstances"][0]["DBParameterGroups"][0]
    assert default["DBParameterGroupName"].startswith("default.")
    with pytest.raises(ClientError) as exc:
        rds.modify_db_parameter_group(DBParameterGroupName=default["DBParameterGroupName"], Parameters=[
            {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Cannot modify a default parameter group" in str(exc.value)


def test_delay_is_seconds_or_never():
    assert rds_control.parse_delay("never") is None and rds_control.parse_delay("1.5") == 1.5
    with pytest.raises(Exception, match="neither a number"):
        rds_control.parse_delay("soon")
