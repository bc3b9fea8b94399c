"""The SQL each server flavor gets, pinned per version; the replica-status normalizer on real rows."""

from __future__ import annotations

import dataclasses

import pytest

from migrate.adapters.dialect import (
    BinlogPosition,
    Dialect,
    ReplicaStatus,
    Unsupported,
    detect,
    native_password_hash,
)
from migrate.errors import Refused

# VERSION() / @@version_comment as each server reports them.
SERVERS = {
    "mysql57": ("5.7.44-log", "MySQL Community Server (GPL)"),
    "mysql8021": ("8.0.21", "MySQL Community Server - GPL"),
    "mysql8022": ("8.0.22", "MySQL Community Server - GPL"),
    "mysql8023": ("8.0.23", "MySQL Community Server - GPL"),
    "mysql8026": ("8.0.26", "Source distribution"),
    "mysql8036": ("8.0.36", "Source distribution"),
    "mysql84": ("8.4.3", "MySQL Community Server - GPL"),
    "mariadb106": ("10.6.14-MariaDB-log", "MariaDB Server"),
    "mariadb1011": ("10.11.19-MariaDB-0+deb12u1-log", "Debian 12"),
    "mariadb114": ("11.4.4-MariaDB-ubu2404", "mariadb.org binary distribution"),
}
MYSQL = [k for k in SERVERS if k.startswith("mysql")]
MARIADB = [k for k in SERVERS if k.startswith("mariadb")]
PASSWORD = "Tr0ub4dor&3-repl"


def dialect(key: str, *, rds: bool = False) -> Dialect:
    version, comment = SERVERS[key]
    return detect(version, comment, rds=rds)


def table(method: str, expected: dict[str, str]) -> list[tuple[str, str, str]]:
    assert set(expected) == set(SERVERS), f"{method}: pin every server"
    return [(key, method, sql) for key, sql in expected.items()]


def same(sql: str) -> dict[str, str]:
    return dict.fromkeys(SERVERS, sql)


def by_flavor(mysql: str, mariadb: str) -> dict[str, str]:
    return {key: mysql if key in MYSQL else mariadb for key in SERVERS}


OLD_WORDS = ("mysql57", "mysql8021")  # before MySQL 8.0.22 there is no REPLICA keyword


def replica_words(template: str) -> dict[str, str]:
    return {key: template.format("SLAVE" if key in OLD_WORDS else "REPLICA") for key in SERVERS}


NO_ARG_STATEMENTS = [
    *table("replica_status", replica_words("SHOW {} STATUS")),
    *table("start_replica", replica_words("START {}")),
    *table("stop_replica", replica_words("STOP {}")),
    *table("stop_replica_sql_thread", replica_words("STOP {} SQL_THREAD")),
    *table("stop_replica_io_thread", replica_words("STOP {} IO_THREAD")),
    *table("start_replica_sql_thread", replica_words("START {} SQL_THREAD")),
    *table("reset_replica_all", replica_words("RESET {} ALL")),
    *table("binlog_status", {**same("SHOW MASTER STATUS"), "mysql84": "SHOW BINARY LOG STATUS"}),
    *table("reset_binary_logs", {**same("RESET MASTER"), "mysql84": "RESET BINARY LOGS AND GTIDS"}),
    *table("binlog_gtid_position", by_flavor("SELECT @@GLOBAL.gtid_executed AS gtid",
                                             "SELECT @@GLOBAL.gtid_binlog_pos AS gtid")),
    *table("replica_gtid_position", by_flavor("SELECT @@GLOBAL.gtid_executed AS gtid",
                                              "SELECT @@GLOBAL.gtid_slave_pos AS gtid")),
    *table("read_only_status", by_flavor(
        "SELECT @@GLOBAL.read_only AS read_only, @@GLOBAL.super_read_only AS super_read_only",
        "SELECT @@GLOBAL.read_only AS read_only, 0 AS super_read_only")),
]


@pytest.mark.parametrize(("server", "method", "sql"), NO_ARG_STATEMENTS)
def test_each_server_gets_its_own_spelling_of_the_replication_statements(server, method, sql):
    stmt = getattr(dialect(server), method)()
    assert stmt.sql == sql
    assert stmt.params == ()


@pytest.mark.parametrize(("server", "variable"), [
    ("mysql57", "log_slave_updates"), ("mysql8021", "log_slave_updates"), ("mysql8022", "log_slave_updates"),
    ("mysql8023", "log_slave_updates"), ("mysql8026", "log_replica_updates"),
    ("mysql8036", "log_replica_updates"), ("mysql84", "log_replica_updates"),
    ("mariadb106", "log_slave_updates"), ("mariadb1011", "log_slave_updates"), ("mariadb114", "log_slave_updates"),
])
def test_log_replica_updates_is_named_after_the_version(server, variable):
    assert dialect(server).log_replica_updates_variable == variable


# -- detect ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("version", "comment", "flavor", "parsed"), [
    ("10.11.19-MariaDB-0+deb12u1-log", "Debian 12", "mariadb", (10, 11, 19)),
    ("5.5.5-10.6.14-MariaDB", "", "mariadb", (10, 6, 14)),
    ("5.5.5-10.4.31-MariaDB-log", "Source distribution", "mariadb", (10, 4, 31)),
    ("10.6.14-log", "MariaDB Server", "mariadb", (10, 6, 14)),
    ("11.4.4-MariaDB-ubu2404", "mariadb.org binary distribution", "mariadb", (11, 4, 4)),
    ("8.0.35", "Source distribution", "mysql", (8, 0, 35)),
    ("8.0.28-log", "", "mysql", (8, 0, 28)),
    ("8.4.3", "MySQL Community Server - GPL", "mysql", (8, 4, 3)),
    ("5.7.44-log", "MySQL Community Server (GPL)", "mysql", (5, 7, 44)),
    ("8.0.36-28", "Percona Server (GPL), Release 28, Revision 47601f19", "mysql", (8, 0, 36)),
    ("9.1.0", "MySQL Community Server - GPL", "mysql", (9, 1, 0)),
])
def test_detect_reads_flavor_and_version_from_real_version_strings(version, comment, flavor, parsed):
    d = detect(version, comment)
    assert (d.flavor, d.version, d.rds) == (flavor, parsed, False)


@pytest.mark.parametrize("version", ["", "MariaDB", "garbage-8", "v8.0"])
def test_detect_refuses_a_version_it_cannot_read(version):
    with pytest.raises(ValueError, match="cannot tell the server version"):
        detect(version, "")


def test_dialect_names_say_flavor_version_and_rds():
    assert detect("10.11.19-MariaDB-0+deb12u1-log").name == "MariaDB 10.11.19"
    assert detect("8.0.35", "Source distribution").name == "MySQL 8.0.35"
    assert detect("8.0.35", rds=True).name == "MySQL 8.0.35 (RDS)"


def test_gtid_auto_position_and_super_read_only_are_mysql_things():
    assert dialect("mysql57").supports_gtid_auto_position
    assert dialect("mysql84").supports_gtid_auto_position
    assert not dialect("mariadb1011").supports_gtid_auto_position
    assert dialect("mysql57").has_super_read_only
    assert not detect("5.7.7").has_super_read_only
    assert not dialect("mariadb114").has_super_read_only


def test_mysql_84_reads_binary_log_status_not_master_status():
    assert dialect("mysql84").binlog_status().sql == "SHOW BINARY LOG STATUS"
    assert detect("8.2.0").binlog_status().sql == "SHOW BINARY LOG STATUS"
    assert detect("8.1.0").binlog_status().sql == "SHOW MASTER STATUS"
    assert detect("9.1.0").binlog_status().sql == "SHOW BINARY LOG STATUS"


def test_mariadb_before_10_5_keeps_the_slave_keyword():
    d = detect("10.4.31-MariaDB")
    assert d.replica_status().sql == "SHOW SLAVE STATUS"
    assert d.start_replica().sql == "START SLAVE"
    assert d.reset_replica_all().sql == "RESET SLAVE ALL"


# -- change_source -----------------------------------------------------------------------------

MASTER_FILE_POS = ("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=3306, MASTER_USER=%s, MASTER_PASSWORD=%s, "
                   "MASTER_CONNECT_RETRY=10, MASTER_LOG_FILE=%s, MASTER_LOG_POS=154, ")
SOURCE_FILE_POS = ("CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=3306, SOURCE_USER=%s, "
                   "SOURCE_PASSWORD=%s, SOURCE_CONNECT_RETRY=10, SOURCE_LOG_FILE=%s, SOURCE_LOG_POS=154, ")
CHANGE_BY_FILE = {
    "mysql57": MASTER_FILE_POS + "MASTER_AUTO_POSITION=0, MASTER_SSL=0",
    "mysql8021": MASTER_FILE_POS + "MASTER_AUTO_POSITION=0, MASTER_SSL=0, GET_MASTER_PUBLIC_KEY=1",
    "mysql8022": MASTER_FILE_POS + "MASTER_AUTO_POSITION=0, MASTER_SSL=0, GET_MASTER_PUBLIC_KEY=1",
    "mysql8023": SOURCE_FILE_POS + "SOURCE_AUTO_POSITION=0, SOURCE_SSL=0, GET_SOURCE_PUBLIC_KEY=1",
    "mysql8026": SOURCE_FILE_POS + "SOURCE_AUTO_POSITION=0, SOURCE_SSL=0, GET_SOURCE_PUBLIC_KEY=1",
    "mysql8036": SOURCE_FILE_POS + "SOURCE_AUTO_POSITION=0, SOURCE_SSL=0, GET_SOURCE_PUBLIC_KEY=1",
    "mysql84": SOURCE_FILE_POS + "SOURCE_AUTO_POSITION=0, SOURCE_SSL=0, GET_SOURCE_PUBLIC_KEY=1",
    "mariadb106": MASTER_FILE_POS + "MASTER_USE_GTID=no, MASTER_SSL=0",
    "mariadb1011": MASTER_FILE_POS + "MASTER_USE_GTID=no, MASTER_SSL=0",
    "mariadb114": MASTER_FILE_POS + "MASTER_USE_GTID=no, MASTER_SSL=0",
}


@pytest.mark.parametrize(("server", "sql"), CHANGE_BY_FILE.items())
def test_change_source_by_file_and_position(server, sql):
    [stmt] = dialect(server).change_source("10.0.0.5", 3306, "repl", PASSWORD,
                                           log_file="mysql-bin-changelog.000042", log_pos=154)
    assert stmt.sql == sql
    assert stmt.params == ("10.0.0.5", "repl", PASSWORD, "mysql-bin-changelog.000042")
    assert stmt.secret_params == frozenset({2})


MASTER_AUTO = ("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=3306, MASTER_USER=%s, MASTER_PASSWORD=%s, "
               "MASTER_CONNECT_RETRY=10, MASTER_AUTO_POSITION=1, MASTER_SSL=1, MASTER_SSL_CA=%s")
SOURCE_AUTO = ("CHANGE REPLICATION SOURCE TO SOURCE_HOST=%s, SOURCE_PORT=3306, SOURCE_USER=%s, SOURCE_PASSWORD=%s, "
               "SOURCE_CONNECT_RETRY=10, SOURCE_AUTO_POSITION=1, SOURCE_SSL=1, SOURCE_SSL_CA=%s")


@pytest.mark.parametrize(("server", "sql"), [
    ("mysql57", MASTER_AUTO), ("mysql8021", MASTER_AUTO), ("mysql8022", MASTER_AUTO),
    ("mysql8023", SOURCE_AUTO), ("mysql8026", SOURCE_AUTO), ("mysql8036", SOURCE_AUTO), ("mysql84", SOURCE_AUTO),
])
def test_mysql_change_source_by_gtid_auto_position_over_tls(server, sql):
    [stmt] = dialect(server).change_source("db.example", 3306, "repl", PASSWORD, auto_position=True, tls=True,
                                           ca_file="/etc/ssl/rds-ca.pem")
    assert stmt.sql == sql
    assert stmt.params == ("db.example", "repl", PASSWORD, "/etc/ssl/rds-ca.pem")


@pytest.mark.parametrize("server", MARIADB)
def test_mariadb_change_source_by_gtid_sets_the_slave_position_first(server):
    set_pos, change = dialect(server).change_source("10.0.0.5", 3307, "repl", PASSWORD, gtid="0-1-42, 1-2-7",
                                                    tls=True, connect_retry=5, heartbeat_s=2.5)
    assert set_pos.sql == "SET GLOBAL gtid_slave_pos = %s"
    assert set_pos.params == ("0-1-42,1-2-7",)
    assert change.sql == ("CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=3307, MASTER_USER=%s, MASTER_PASSWORD=%s, "
                          "MASTER_CONNECT_RETRY=5, MASTER_HEARTBEAT_PERIOD=2.5, MASTER_USE_GTID=slave_pos, "
                          "MASTER_SSL=1")
    assert change.params == ("10.0.0.5", "repl", PASSWORD)


def test_heartbeat_and_integers_are_formatted_inline():
    [stmt] = dialect("mysql8036").change_source("h", "3306", "repl", PASSWORD, log_file="b.000001", log_pos="4",
                                                connect_retry="30", heartbeat_s=0.5)
    assert "SOURCE_PORT=3306," in stmt.sql
    assert "SOURCE_CONNECT_RETRY=30, SOURCE_HEARTBEAT_PERIOD=0.5," in stmt.sql
    assert "SOURCE_LOG_POS=4," in stmt.sql


@pytest.mark.parametrize("server", list(SERVERS))
def test_the_replication_password_never_appears_in_a_shown_statement(server):
    d = dialect(server)
    kwargs = {"gtid": "0-1-42"} if server in MARIADB else {"auto_position": True}
    for stmt in [*d.change_source("h", 3306, "repl", PASSWORD, **kwargs),
                 *d.change_source("h", 3306, "repl", PASSWORD, log_file="b.000001", log_pos=4)]:
        assert PASSWORD not in stmt.shown()
        assert PASSWORD not in stmt.sql
    rds = dataclasses.replace(d, rds=True)
    external = [rds.set_external_source("h", 3306, "repl", PASSWORD, log_file="b.000001", log_pos=4, ssl=True),
                rds.set_external_source_gtid("h", 3306, "repl", PASSWORD, ssl=False, **kwargs_gtid(server))]
    for stmt in external:
        assert PASSWORD not in stmt.shown()
        assert "'***'" in stmt.shown()


@pytest.mark.parametrize("server", list(SERVERS))
def test_create_user_sends_mariadb_a_hash_and_leaves_mysql_s_own_rewrite(server):
    stmt = dialect(server).create_user("repl", PASSWORD)
    assert PASSWORD not in stmt.shown()
    if server in MARIADB:  # MariaDB binlogs the statement as sent
        assert stmt.sql == "CREATE USER %s@%s IDENTIFIED BY PASSWORD %s"
        assert PASSWORD not in stmt.params
        assert stmt.params[2] == native_password_hash(PASSWORD)
    else:  # MySQL writes IDENTIFIED WITH <plugin> AS <hash> in its logs itself
        assert stmt.sql == "CREATE USER %s@%s IDENTIFIED BY %s" and stmt.params == ("repl", "%", PASSWORD)


def test_the_native_password_hash_is_the_servers():
    # SELECT PASSWORD('secret') on MariaDB 10.11 and MySQL 5.7
    assert native_password_hash("secret") == "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7"


def kwargs_gtid(server: str) -> dict[str, str]:
    return {"gtid": "0-1-42"} if server in MARIADB else {}


@pytest.mark.parametrize("empty", ["", "   ", "\n"])
@pytest.mark.parametrize("server", MARIADB)
def test_an_empty_mariadb_gtid_is_refused_because_it_replays_every_binlog(server, empty):
    d = dialect(server)
    with pytest.raises(ValueError, match="empty MariaDB GTID"):
        d.change_source("h", 3306, "repl", PASSWORD, gtid=empty)
    with pytest.raises(ValueError, match="empty MariaDB GTID"):
        dataclasses.replace(d, rds=True).set_external_source_gtid("h", 3306, "repl", PASSWORD, gtid=empty, ssl=True)
    with pytest.raises(ValueError, match="empty MariaDB GTID"):
        d.wait_for_gtid(empty, 5)


def test_a_mysql_gtid_set_is_not_taken_for_a_mariadb_position():
    with pytest.raises(ValueError, match="not a MariaDB GTID"):
        dialect("mariadb1011").change_source("h", 3306, "repl", PASSWORD,
                                              gtid="3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5")


@pytest.mark.parametrize(("server", "kwargs", "message"), [
    ("mysql8036", {}, "exactly one starting point"),
    ("mysql8036", {"log_file": "b.000001", "log_pos": 4, "auto_position": True}, "exactly one starting point"),
    ("mysql8036", {"gtid": "uuid:1-5", "auto_position": True}, "gtid_purged"),
    ("mysql8036", {"log_file": "b.000001"}, "together"),
    ("mysql8036", {"log_file": "b.000001", "log_pos": 0}, "not a binlog position"),
    ("mysql8036", {"auto_position": True, "ca_file": "/ca.pem"}, "tls is off"),
    ("mariadb1011", {}, "exactly one starting point"),
    ("mariadb1011", {"auto_position": True}, "no auto-position"),
    ("mariadb1011", {"gtid": "0-1-5", "log_file": "b.000001", "log_pos": 4}, "exactly one starting point"),
])
def test_change_source_refuses_combinations_that_make_no_sense(server, kwargs, message):
    with pytest.raises(ValueError, match=message):
        dialect(server).change_source("h", 3306, "repl", PASSWORD, **kwargs)


# -- waiting -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("server", "function"), [
    ("mysql57", "MASTER_POS_WAIT"), ("mysql8021", "MASTER_POS_WAIT"), ("mysql8022", "MASTER_POS_WAIT"),
    ("mysql8023", "MASTER_POS_WAIT"), ("mysql8026", "SOURCE_POS_WAIT"), ("mysql8036", "SOURCE_POS_WAIT"),
    ("mysql84", "SOURCE_POS_WAIT"), ("mariadb106", "MASTER_POS_WAIT"), ("mariadb1011", "MASTER_POS_WAIT"),
    ("mariadb114", "MASTER_POS_WAIT"),
])
def test_wait_for_position_uses_source_pos_wait_from_mysql_8_0_26(server, function):
    stmt = dialect(server).wait_for_position("binlog.000007", 1822, 2.5)
    assert stmt.sql == f"SELECT {function}(%s, %s, %s) AS result"
    assert stmt.params == ("binlog.000007", 1822, 3)


@pytest.mark.parametrize(("server", "sql", "gtid"), [
    ("mysql57", "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS result",
     "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n8a94f357-aab4-11df-86ab-c80aa9429562:1-3"),
    ("mysql84", "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS result", "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5"),
    ("mariadb1011", "SELECT MASTER_GTID_WAIT(%s, %s) AS result", "0-1-13"),
])
def test_wait_for_gtid_uses_each_flavors_function(server, sql, gtid):
    stmt = dialect(server).wait_for_gtid(gtid, 10)
    assert stmt.sql == sql
    assert stmt.params == (gtid.replace("\n", ""), 10)


@pytest.mark.parametrize("timeout", [0, -1])
def test_a_wait_without_a_positive_timeout_is_refused_since_zero_means_forever(timeout):
    with pytest.raises(ValueError, match="positive timeout"):
        dialect("mariadb1011").wait_for_position("binlog.000001", 4, timeout)


@pytest.mark.parametrize(("server", "kind", "value", "outcome"), [
    ("mariadb1011", "position", 0, "reached"),
    ("mariadb1011", "position", 1, "reached"),  # measured on 10.11: events waited for
    ("mariadb1011", "position", -1, "timeout"),
    ("mariadb1011", "position", None, "not_replicating"),  # SQL thread stopped or replica not configured
    ("mysql84", "position", 12, "reached"),
    ("mysql84", "position", -1, "timeout"),
    ("mysql84", "position", None, "not_replicating"),
    ("mysql8036", "gtid", 0, "reached"),
    ("mysql8036", "gtid", 1, "timeout"),
    ("mysql57", "gtid", "1", "timeout"),
    ("mariadb1011", "gtid", 0, "reached"),
    ("mariadb1011", "gtid", -1, "timeout"),
    ("mariadb1011", "gtid", None, "not_replicating"),
])
def test_wait_outcome_reads_each_functions_return_codes(server, kind, value, outcome):
    assert dialect(server).wait_outcome(kind, value) == outcome


def test_an_unknown_gtid_wait_result_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="unexpected result"):
        dialect("mysql8036").wait_outcome("gtid", -1)
    with pytest.raises(ValueError, match="unexpected result"):
        dialect("mariadb1011").wait_outcome("gtid", 1)


# -- binlog position / gtid_at -----------------------------------------------------------------

def test_mysql_binlog_status_carries_its_gtid_set_on_one_line():
    row = {"File": "mysql-bin-changelog.000123", "Position": 157, "Binlog_Do_DB": "", "Binlog_Ignore_DB": "",
           "Executed_Gtid_Set": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n8a94f357-aab4-11df-86ab-c80aa9429562:1-3"}
    assert dialect("mysql84").parse_binlog_status(row) == BinlogPosition(
        "mysql-bin-changelog.000123", 157,
        "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,8a94f357-aab4-11df-86ab-c80aa9429562:1-3")


def test_mysql_without_gtids_has_no_gtid_set():
    row = {"File": "binlog.000002", "Position": 4, "Binlog_Do_DB": "", "Binlog_Ignore_DB": "", "Executed_Gtid_Set": ""}
    assert dialect("mysql57").parse_binlog_status(row).gtid_set is None


def test_mariadb_binlog_status_takes_the_gtid_from_the_caller():
    row = {"File": "binlog.000001", "Position": 1822, "Binlog_Do_DB": "", "Binlog_Ignore_DB": ""}  # 10.11, real
    d = dialect("mariadb1011")
    assert d.parse_binlog_status(row, "0-1-9") == BinlogPosition("binlog.000001", 1822, "0-1-9")
    assert d.parse_binlog_status(row, "").gtid_set is None


def test_no_binlog_status_row_means_binary_logging_is_off():
    with pytest.raises(Unsupported, match="binary logging is off"):
        dialect("mariadb1011").parse_binlog_status(None)


def test_mariadb_maps_a_binlog_position_to_its_gtid():
    stmt = dialect("mariadb114").gtid_at("binlog.000001", 2226)
    assert stmt.sql == "SELECT BINLOG_GTID_POS(%s, %s) AS gtid"
    assert stmt.params == ("binlog.000001", 2226)


@pytest.mark.parametrize("server", MYSQL)
def test_mysql_has_no_function_mapping_a_position_to_gtids(server):
    with pytest.raises(NotImplementedError, match="no function mapping a binlog position"):
        dialect(server).gtid_at("binlog.000001", 4)


# -- replica status normalizer -----------------------------------------------------------------

MYSQL57_SLAVE_STATUS = {
    "Slave_IO_State": "Waiting for master to send event", "Master_Host": "orders-prod.abc.us-east-1.rds.amazonaws.com",
    "Master_User": "repl", "Master_Port": 3306, "Connect_Retry": 10, "Master_Log_File": "mysql-bin-changelog.000210",
    "Read_Master_Log_Pos": 48_213, "Relay_Log_File": "relay.000004", "Relay_Log_Pos": 9_001,
    "Relay_Master_Log_File": "mysql-bin-changelog.000209", "Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes",
    "Replicate_Do_DB": "", "Replicate_Ignore_DB": "", "Replicate_Do_Table": "", "Replicate_Ignore_Table": "",
    "Replicate_Wild_Do_Table": "", "Replicate_Wild_Ignore_Table": "mysql.%", "Last_Errno": 0, "Last_Error": "",
    "Skip_Counter": 0, "Exec_Master_Log_Pos": 120_334, "Relay_Log_Space": 130_000, "Until_Condition": "None",
    "Until_Log_File": "", "Until_Log_Pos": 0, "Master_SSL_Allowed": "Yes", "Master_SSL_CA_File": "/etc/ssl/rds.pem",
    "Master_SSL_CA_Path": "", "Master_SSL_Cert": "", "Master_SSL_Cipher": "", "Master_SSL_Key": "",
    "Seconds_Behind_Master": 3, "Master_SSL_Verify_Server_Cert": "No", "Last_IO_Errno": 0, "Last_IO_Error": "",
    "Last_SQL_Errno": 0, "Last_SQL_Error": "", "Replicate_Ignore_Server_Ids": "", "Master_Server_Id": 1_234_567,
    "Master_UUID": "3e11fa47-71ca-11e1-9e33-c80aa9429562", "Master_Info_File": "mysql.slave_master_info",
    "SQL_Delay": 0, "SQL_Remaining_Delay": None,
    "Slave_SQL_Running_State": "Slave has read all relay log; waiting for more updates", "Master_Retry_Count": 86400,
    "Master_Bind": "", "Last_IO_Error_Timestamp": "", "Last_SQL_Error_Timestamp": "", "Master_SSL_Crl": "",
    "Master_SSL_Crlpath": "", "Retrieved_Gtid_Set": "", "Executed_Gtid_Set": "", "Auto_Position": 0,
    "Replicate_Rewrite_DB": "", "Channel_Name": "", "Master_TLS_Version": "",
}

MYSQL80_REPLICA_STATUS = {
    "Replica_IO_State": "Waiting for source to send event", "Source_Host": "10.0.1.20", "Source_User": "repl",
    "Source_Port": 3306, "Connect_Retry": 10, "Source_Log_File": "binlog.000031", "Read_Source_Log_Pos": 9_812_331,
    "Relay_Log_File": "ip-10-0-1-21-relay-bin.000002", "Relay_Log_Pos": 9_812_547,
    "Relay_Source_Log_File": "binlog.000031", "Replica_IO_Running": "Yes", "Replica_SQL_Running": "No",
    "Replicate_Do_DB": "", "Replicate_Ignore_DB": "", "Replicate_Do_Table": "", "Replicate_Ignore_Table": "",
    "Replicate_Wild_Do_Table": "", "Replicate_Wild_Ignore_Table": "", "Last_Errno": 1062,
    "Last_Error": "Coordinator stopped because there were error(s) in the worker(s).", "Skip_Counter": 0,
    "Exec_Source_Log_Pos": 9_700_000, "Relay_Log_Space": 9_812_900, "Until_Condition": "None", "Until_Log_File": "",
    "Until_Log_Pos": 0, "Source_SSL_Allowed": "No", "Source_SSL_CA_File": "", "Source_SSL_CA_Path": "",
    "Source_SSL_Cert": "", "Source_SSL_Cipher": "", "Source_SSL_Key": "", "Seconds_Behind_Source": None,
    "Source_SSL_Verify_Server_Cert": "No", "Last_IO_Errno": 0, "Last_IO_Error": "", "Last_SQL_Errno": 1062,
    "Last_SQL_Error": "Worker 1 failed executing transaction '3e11fa47-71ca-11e1-9e33-c80aa9429562:1001' at source "
                      "log binlog.000031, end_log_pos 9700311; Could not execute Write_rows event on table "
                      "app.orders; Duplicate entry '17' for key 'orders.PRIMARY'",
    "Replicate_Ignore_Server_Ids": "", "Source_Server_Id": 1, "Source_UUID": "3e11fa47-71ca-11e1-9e33-c80aa9429562",
    "Source_Info_File": "mysql.slave_master_info", "SQL_Delay": 0, "SQL_Remaining_Delay": None,
    "Replica_SQL_Running_State": "", "Source_Retry_Count": 86400, "Source_Bind": "",
    "Last_IO_Error_Timestamp": "", "Last_SQL_Error_Timestamp": "240611 10:02:03", "Source_SSL_Crl": "",
    "Source_SSL_Crlpath": "", "Retrieved_Gtid_Set": "3e11fa47-71ca-11e1-9e33-c80aa9429562:900-1002",
    "Executed_Gtid_Set": "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-1000,\n8a94f357-aab4-11df-86ab-c80aa9429562:1-3",
    "Auto_Position": 1, "Replicate_Rewrite_DB": "", "Channel_Name": "", "Source_TLS_Version": "",
    "Source_public_key_path": "", "Get_Source_public_key": 1, "Network_Namespace": "",
}

# Captured from MariaDB 10.11.19 (SHOW REPLICA STATUS and SHOW SLAVE STATUS answer the same columns),
# replicating by GTID; it has no Gtid_Slave_Pos column.
MARIADB1011_REPLICA_STATUS = {
    "Slave_IO_State": "Waiting for master to send event", "Master_Host": "127.0.0.1", "Master_User": "repl",
    "Master_Port": 34711, "Connect_Retry": 5, "Master_Log_File": "binlog.000001", "Read_Master_Log_Pos": 2630,
    "Relay_Log_File": "relay.000002", "Relay_Log_Pos": 754, "Relay_Master_Log_File": "binlog.000001",
    "Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes", "Replicate_Do_DB": "", "Replicate_Ignore_DB": "",
    "Replicate_Do_Table": "", "Replicate_Ignore_Table": "", "Replicate_Wild_Do_Table": "",
    "Replicate_Wild_Ignore_Table": "", "Last_Errno": 0, "Last_Error": "", "Skip_Counter": 0,
    "Exec_Master_Log_Pos": 2630, "Relay_Log_Space": 1053, "Until_Condition": "None", "Until_Log_File": "",
    "Until_Log_Pos": 0, "Master_SSL_Allowed": "No", "Master_SSL_CA_File": "", "Master_SSL_CA_Path": "",
    "Master_SSL_Cert": "", "Master_SSL_Cipher": "", "Master_SSL_Key": "", "Seconds_Behind_Master": 0,
    "Master_SSL_Verify_Server_Cert": "No", "Last_IO_Errno": 0, "Last_IO_Error": "", "Last_SQL_Errno": 0,
    "Last_SQL_Error": "", "Replicate_Ignore_Server_Ids": "", "Master_Server_Id": 1, "Master_SSL_Crl": "",
    "Master_SSL_Crlpath": "", "Using_Gtid": "Slave_Pos", "Gtid_IO_Pos": "0-1-13", "Replicate_Do_Domain_Ids": "",
    "Replicate_Ignore_Domain_Ids": "", "Parallel_Mode": "optimistic", "SQL_Delay": 0, "SQL_Remaining_Delay": None,
    "Slave_SQL_Running_State": "Slave has read all relay log; waiting for more updates", "Slave_DDL_Groups": 0,
    "Slave_Non_Transactional_Groups": 0, "Slave_Transactional_Groups": 2, "Replicate_Rewrite_DB": "",
}


def test_mysql_57_slave_status_is_normalized():
    st = dialect("mysql57").parse_replica_status(MYSQL57_SLAVE_STATUS)
    assert st == ReplicaStatus(
        configured=True, io_state="running", sql_running=True, seconds_behind=3,
        source_host="orders-prod.abc.us-east-1.rds.amazonaws.com", source_port=3306,
        source_log_file="mysql-bin-changelog.000210", read_source_log_pos=48_213,
        exec_source_log_file="mysql-bin-changelog.000209", exec_source_log_pos=120_334,
        retrieved_gtid_set=None, executed_gtid_set=None, using_gtid=False, relay_log_space=130_000)
    assert st.healthy and st.io_running and st.last_error is None


def test_mysql_80_replica_status_with_an_applier_error_is_normalized():
    st = dialect("mysql8036").parse_replica_status(MYSQL80_REPLICA_STATUS)
    assert (st.io_state, st.sql_running, st.seconds_behind) == ("running", False, None)
    assert (st.source_host, st.source_port) == ("10.0.1.20", 3306)
    assert (st.source_log_file, st.read_source_log_pos) == ("binlog.000031", 9_812_331)
    assert (st.exec_source_log_file, st.exec_source_log_pos) == ("binlog.000031", 9_700_000)
    assert st.executed_gtid_set == "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-1000,8a94f357-aab4-11df-86ab-c80aa9429562:1-3"
    assert st.retrieved_gtid_set == "3e11fa47-71ca-11e1-9e33-c80aa9429562:900-1002"
    assert st.using_gtid
    assert not st.healthy
    assert st.last_error.startswith("(1062) Worker 1 failed executing transaction")


def test_mariadb_1011_replica_status_is_normalized_with_the_slave_pos_passed_in():
    d = dialect("mariadb1011")
    st = d.parse_replica_status(MARIADB1011_REPLICA_STATUS, "0-1-13")
    assert st == ReplicaStatus(
        configured=True, io_state="running", sql_running=True, seconds_behind=0, source_host="127.0.0.1",
        source_port=34711, source_log_file="binlog.000001", read_source_log_pos=2630,
        exec_source_log_file="binlog.000001", exec_source_log_pos=2630, retrieved_gtid_set="0-1-13",
        executed_gtid_set="0-1-13", using_gtid=True, relay_log_space=1053)
    assert st.healthy
    assert d.parse_replica_status(MARIADB1011_REPLICA_STATUS).executed_gtid_set is None


def test_mariadb_show_all_replicas_status_carries_its_own_slave_pos():
    row = {**MARIADB1011_REPLICA_STATUS, "Connection_name": "", "Gtid_Slave_Pos": "0-1-13,1-1-3"}
    assert dialect("mariadb114").parse_replica_status(row).executed_gtid_set == "0-1-13,1-1-3"


def test_mariadb_replica_that_cannot_log_in_is_connecting_with_an_io_error():
    # MariaDB 10.11, wrong replication password.
    row = {**MARIADB1011_REPLICA_STATUS, "Slave_IO_State": "Connecting to master", "Slave_IO_Running": "Connecting",
           "Using_Gtid": "No", "Gtid_IO_Pos": "", "Seconds_Behind_Master": None, "Last_IO_Errno": 1045,
           "Last_IO_Error": "error connecting to master 'repl@127.0.0.1:34711' - retry-time: 1  maximum-retries: "
                            "100000  message: Access denied for user 'repl'@'127.0.0.1' (using password: YES)"}
    st = dialect("mariadb1011").parse_replica_status(row)
    assert st.io_state == "connecting"
    assert not st.io_running and not st.healthy
    assert not st.using_gtid and st.retrieved_gtid_set is None
    assert st.last_error.startswith("(1045) error connecting to master")


def test_stopped_threads_read_as_stopped():
    row = {**MYSQL57_SLAVE_STATUS, "Slave_IO_Running": "No", "Slave_SQL_Running": "No",
           "Seconds_Behind_Master": None}
    st = dialect("mysql57").parse_replica_status(row)
    assert (st.io_state, st.sql_running, st.healthy) == ("stopped", False, False)


@pytest.mark.parametrize("row", [None, {}])
def test_a_server_that_is_no_replica_reads_as_not_configured(row):
    st = dialect("mariadb1011").parse_replica_status(row)
    assert not st.configured and not st.healthy and st.io_state == "stopped" and st.last_error is None


def test_the_sql_error_is_reported_before_the_io_error():
    st = ReplicaStatus(configured=True, last_io_errno=2003, last_io_error="can't connect",
                       last_sql_errno=1146, last_sql_error="Table 'app.t' doesn't exist")
    assert st.last_error == "(1146) Table 'app.t' doesn't exist"


# -- read_only, kill, sql_log_bin --------------------------------------------------------------

def test_mysql_puts_super_read_only_on_last_and_takes_it_off_first():
    d = dialect("mysql8036")
    assert [s.sql for s in d.set_read_only(True)] == ["SET GLOBAL read_only = ON", "SET GLOBAL super_read_only = ON"]
    assert [s.sql for s in d.set_read_only(False)] == ["SET GLOBAL super_read_only = OFF",
                                                      "SET GLOBAL read_only = OFF"]


@pytest.mark.parametrize("server", MARIADB)
def test_mariadb_sets_read_only_alone(server):
    assert [s.sql for s in dialect(server).set_read_only(True)] == ["SET GLOBAL read_only = ON"]
    assert [s.sql for s in dialect(server).set_read_only(False)] == ["SET GLOBAL read_only = OFF"]


def test_read_only_cannot_be_set_by_sql_on_rds():
    with pytest.raises(Unsupported, match="needs SUPER"):
        dialect("mysql8036", rds=True).set_read_only(True)


@pytest.mark.parametrize(("row", "expected"), [
    ({"read_only": 1, "super_read_only": 0}, (True, False)),  # MariaDB 10.11, real
    ({"read_only": 0, "super_read_only": 0}, (False, False)),
    ({"read_only": 1, "super_read_only": 1}, (True, True)),
    ({"read_only": "NO_LOCK", "super_read_only": 0}, (True, False)),
    ({"read_only": "OFF", "super_read_only": "OFF"}, (False, False)),
])
def test_read_only_status_rows_are_read_as_booleans(row, expected):
    assert Dialect.parse_read_only(row) == expected


@pytest.mark.parametrize(("rds", "kill", "kill_query"), [
    (False, "KILL CONNECTION %s", "KILL QUERY %s"),
    (True, "CALL mysql.rds_kill(%s)", "CALL mysql.rds_kill_query(%s)"),
])
def test_kill_goes_through_the_rds_procedures_on_rds(rds, kill, kill_query):
    d = dialect("mysql8036", rds=rds)
    assert (d.kill(42).sql, d.kill(42).params) == (kill, (42,))
    assert (d.kill_query("42").sql, d.kill_query("42").params) == (kill_query, (42,))


def test_sql_log_bin_is_set_per_session_but_refused_on_rds():
    d = dialect("mariadb1011")
    assert d.set_sql_log_bin(False).sql == "SET SESSION sql_log_bin = 0"
    assert d.set_sql_log_bin(True).sql == "SET SESSION sql_log_bin = 1"
    with pytest.raises(Unsupported, match="sql_log_bin") as caught:
        dialect("mariadb1011", rds=True).set_sql_log_bin(False)
    assert isinstance(caught.value, Refused)


def test_the_replication_grant_names_the_account_as_parameters():
    stmt = dialect("mysql84").grant_replication("repl", "10.0.%")
    assert (stmt.sql, stmt.params) == ("GRANT REPLICATION SLAVE ON *.* TO %s@%s", ("repl", "10.0.%"))
    assert stmt.shown() == "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'10.0.%'"


# -- RDS procedures ------------------------------------------------------------------------------

@pytest.mark.parametrize(("server", "sql"), [
    ("mysql57", "CALL mysql.rds_set_external_master(%s, 3306, %s, %s, %s, 107, 1)"),
    ("mysql8036", "CALL mysql.rds_set_external_master(%s, 3306, %s, %s, %s, 107, 1)"),
    ("mysql84", "CALL mysql.rds_set_external_source(%s, 3306, %s, %s, %s, 107, 1)"),
    ("mariadb1011", "CALL mysql.rds_set_external_master(%s, 3306, %s, %s, %s, 107, 1)"),
])
def test_rds_becomes_a_replica_of_an_outside_server_through_its_procedure(server, sql):
    stmt = dialect(server, rds=True).set_external_source("ec2.example", 3306, "repl", PASSWORD,
                                                         log_file="binlog.000031", log_pos=107, ssl=True)
    assert stmt.sql == sql
    assert stmt.params == ("ec2.example", "repl", PASSWORD, "binlog.000031")
    assert stmt.secret_params == frozenset({2})


@pytest.mark.parametrize(("server", "kwargs", "sql", "params"), [
    ("mariadb1011", {"gtid": "0-1-42"}, "CALL mysql.rds_set_external_master_gtid(%s, 3306, %s, %s, %s, 0)",
     ("ec2.example", "repl", PASSWORD, "0-1-42")),
    ("mysql8036", {}, "CALL mysql.rds_set_external_master_with_auto_position(%s, 3306, %s, %s, 0, 0)",
     ("ec2.example", "repl", PASSWORD)),
    ("mysql84", {}, "CALL mysql.rds_set_external_source_with_auto_position(%s, 3306, %s, %s, 0, 0)",
     ("ec2.example", "repl", PASSWORD)),
])
def test_rds_becomes_a_replica_by_gtid(server, kwargs, sql, params):
    stmt = dialect(server, rds=True).set_external_source_gtid("ec2.example", 3306, "repl", PASSWORD, ssl=False,
                                                              **kwargs)
    assert (stmt.sql, stmt.params, stmt.secret_params) == (sql, params, frozenset({2}))


@pytest.mark.parametrize(("server", "reset"), [
    ("mysql8036", "CALL mysql.rds_reset_external_master"),
    ("mysql84", "CALL mysql.rds_reset_external_source"),
    ("mariadb1011", "CALL mysql.rds_reset_external_master"),
])
def test_rds_replication_procedures(server, reset):
    d = dialect(server, rds=True)
    assert d.reset_external_source().sql == reset
    assert d.rds_start_replication().sql == "CALL mysql.rds_start_replication"
    assert d.rds_stop_replication().sql == "CALL mysql.rds_stop_replication"
    assert d.show_rds_configuration().sql == "CALL mysql.rds_show_configuration"
    stmt = d.set_binlog_retention(72)
    assert (stmt.sql, stmt.params) == ("CALL mysql.rds_set_configuration('binlog retention hours', %s)", (72,))


def test_binlog_retention_of_zero_is_refused():
    with pytest.raises(ValueError, match="at least 1 hour"):
        dialect("mysql8036", rds=True).set_binlog_retention(0)


@pytest.mark.parametrize("call", [
    lambda d: d.set_binlog_retention(24),
    lambda d: d.show_rds_configuration(),
    lambda d: d.set_external_source("h", 3306, "repl", PASSWORD, log_file="b.000001", log_pos=4, ssl=False),
    lambda d: d.set_external_source_gtid("h", 3306, "repl", PASSWORD, ssl=False),
    lambda d: d.reset_external_source(),
    lambda d: d.rds_start_replication(),
    lambda d: d.rds_stop_replication(),
])
def test_rds_procedures_are_refused_off_rds(call):
    with pytest.raises(Unsupported, match="not RDS"):
        call(dialect("mysql8036"))


def test_gtid_purged_is_mysql_only_and_redo_resizing_follows_the_version():
    assert detect("8.0.36").set_gtid_purged("uuid:1-5").sql == "SET GLOBAL gtid_purged = %s"
    with pytest.raises(Unsupported):
        detect("10.11.6-MariaDB").set_gtid_purged("0-1-5")
    assert detect("10.11.6-MariaDB").online_redo_log_variable == "innodb_log_file_size"
    assert detect("10.6.14-MariaDB").online_redo_log_variable is None
    assert detect("8.0.36").online_redo_log_variable == "innodb_redo_log_capacity"
    assert detect("8.0.29").online_redo_log_variable is None


def test_what_target_user_must_hold_per_flavor_and_version():
    """MySQL 8 needs its dynamic privileges (or SUPER); MariaDB 10.11's SUPER no longer gives READ_ONLY ADMIN."""
    def needs(version: str) -> dict[str, frozenset[str]]:
        return dict(detect(version).target_user_needs())

    mysql = needs("8.0.35")
    assert {"REPLICATION_SLAVE_ADMIN", "SYSTEM_VARIABLES_ADMIN", "SET_USER_ID", "CREATE USER", "GRANT OPTION"} <= \
        set(mysql)
    assert "SUPER" in mysql["SYSTEM_VARIABLES_ADMIN"] and mysql["GRANT OPTION"] == {"GRANT OPTION"}
    assert "SUPER" not in needs("10.11.6-MariaDB")["READ_ONLY ADMIN"]
    assert "SUPER" in needs("10.6.16-MariaDB")["READ_ONLY ADMIN"]
    assert detect("8.0.35").default_roles().sql.startswith("SELECT DEFAULT_ROLE_USER AS user")
    assert (detect("8.0.35").replication_password_max, detect("10.11.6-MariaDB").replication_password_max) == (32, 96)


def test_the_service_tables_filter_per_flavor():
    assert detect("8.0.35").ignore_tables("mysql.rds%").sql == \
        "CHANGE REPLICATION FILTER REPLICATE_WILD_IGNORE_TABLE = ('mysql.rds%')"
    maria = detect("10.11.6-MariaDB").ignore_tables("mysql.rds%")
    assert (maria.sql, maria.params) == ("SET GLOBAL replicate_wild_ignore_table = %s", ("mysql.rds%",))


def test_own_grants_and_gtid_history_per_flavor():
    mysql, maria = detect("8.0.35"), detect("10.11.6-MariaDB")
    assert mysql.own_grants("`r`@`%`").sql == "SHOW GRANTS FOR CURRENT_USER() USING `r`@`%`"
    assert mysql.own_grants("NONE").sql == "SHOW GRANTS FOR CURRENT_USER()"
    assert maria.own_grants("r").sql == "SHOW GRANTS"
    assert "gtid_purged" in mysql.gtid_history().sql and "gtid_binlog_pos" in maria.gtid_history().sql
