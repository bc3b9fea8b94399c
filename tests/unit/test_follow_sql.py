"""The statements that make an old primary follow the new one, per flavor and per kind of server, pinned here
because only MariaDB runs on this machine (RDS's procedures are emulated there, MySQL 8 cannot run at all)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from migrate.adapters.dialect import BinlogPosition, detect
from migrate.capabilities import replication
from migrate.capabilities.switch import Link

SECRET = "s3cr3t-pw"


class Recorder:
    """Stands in for a session only to record what would be sent (no server answers here)."""

    def __init__(self, version: str, comment: str = "", rds: bool = False):
        self.dialect = detect(version, comment, rds=rds)
        self.sent: list = []

    def run(self, stmt, params=()):
        self.sent.append(stmt)
        return []


def link(mode: str = "auto", tls: bool = False) -> Link:
    return Link("10.0.1.20", 3306, "repl", lambda: SecretStr(SECRET), tls, None, mode)


AT = BinlogPosition("binlog.000007", 1234, None)


@pytest.mark.parametrize("version,comment,gtid,expected", [
    ("10.11.6-MariaDB", "", "0-2-99", "CALL mysql.rds_set_external_master_gtid(%s, 3306, %s, %s, %s, 0)"),
    ("8.0.36", "MySQL Community Server", "uuid:1-99",
     "CALL mysql.rds_set_external_master_with_auto_position(%s, 3306, %s, %s, 0, 0)"),
    ("8.4.3", "MySQL Community Server", "uuid:1-99",
     "CALL mysql.rds_set_external_source_with_auto_position(%s, 3306, %s, %s, 0, 0)"),
    ("8.0.36", "MySQL Community Server", None, "CALL mysql.rds_set_external_master(%s, 3306, %s, %s, %s, 1234, 0)"),
    ("8.4.3", "MySQL Community Server", None, "CALL mysql.rds_set_external_source(%s, 3306, %s, %s, %s, 1234, 0)"),
])
def test_an_rds_old_primary_follows_through_rds_procedures(version, comment, gtid, expected):
    s = Recorder(version, comment, rds=True)
    replication.configure(s, link(), BinlogPosition(AT.file, AT.pos, gtid), keep_history=True)
    assert [st.sql for st in s.sent] == [expected]
    assert SECRET in s.sent[0].params and SECRET not in s.sent[0].shown()


def test_a_self_managed_mysql_old_primary_keeps_its_gtid_history():
    s = Recorder("8.0.36", "MySQL Community Server")
    how = replication.configure(s, link(), BinlogPosition(AT.file, AT.pos, "uuid:1-99"), keep_history=True)
    assert how == "GTID auto-position, ignoring mysql.rds%"
    assert s.sent[0].sql.startswith("CHANGE REPLICATION FILTER REPLICATE_WILD_IGNORE_TABLE")
    assert not any("RESET" in st.sql or "gtid_purged" in st.sql for st in s.sent)
    assert "SOURCE_AUTO_POSITION=1" in s.sent[-1].sql


def test_a_freshly_seeded_mysql_replica_declares_the_snapshots_history():
    s = Recorder("8.0.36", "MySQL Community Server")
    replication.configure(s, link(), BinlogPosition(AT.file, AT.pos, "uuid:1-99"))
    assert [st.sql for st in s.sent[1:3]] == ["RESET MASTER", "SET GLOBAL gtid_purged = %s"]


def test_a_mariadb_old_primary_follows_from_the_recorded_gtid_position():
    s = Recorder("10.11.6-MariaDB")
    how = replication.configure(s, link(), BinlogPosition(AT.file, AT.pos, "0-2-99"), keep_history=True)
    assert how == "MariaDB GTID from 0-2-99, ignoring mysql.rds%"
    assert s.sent[0].sql == "SET GLOBAL replicate_wild_ignore_table = %s"
    assert s.sent[1].sql == "SET GLOBAL gtid_slave_pos = %s" and s.sent[1].params == ("0-2-99",)
    assert "MASTER_USE_GTID=slave_pos" in s.sent[2].sql


def test_file_mode_follows_from_the_recorded_file_and_position():
    s = Recorder("10.11.6-MariaDB")
    assert replication.configure(s, link("file"), BinlogPosition(AT.file, AT.pos, "0-2-99")) == \
        "file/position binlog.000007:1234, ignoring mysql.rds%"


@pytest.mark.parametrize("rds,expected", [(True, ["CALL mysql.rds_stop_replication"]),
                                          (False, ["STOP REPLICA"])])
def test_stopping_a_replica_uses_rds_procedures_there(rds, expected):
    s = Recorder("8.0.36", "MySQL Community Server", rds=rds)
    replication.stop(s)
    assert [st.sql for st in s.sent] == expected


@pytest.mark.parametrize("version,rds,expected", [
    ("8.0.36", True, ["CALL mysql.rds_reset_external_master"]),
    ("8.4.3", True, ["CALL mysql.rds_reset_external_source"]),
    ("8.0.36", False, ["RESET REPLICA ALL"]),
])
def test_forgetting_a_source_uses_rds_procedures_there(version, rds, expected):
    s = Recorder(version, "MySQL Community Server", rds=rds)
    replication.reset(s)
    assert [st.sql for st in s.sent] == expected
