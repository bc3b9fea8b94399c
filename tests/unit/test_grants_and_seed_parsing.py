"""Pure parsing the cutover and the seed depend on: grant lines, dump coordinates, GTID distance,
client option files."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import SecretStr

from migrate.adapters.client_config import defaults_file
from migrate.adapters.db import Endpoint
from migrate.adapters.dialect import detect
from migrate.capabilities import grants
from migrate.capabilities.replication import mariadb_gtid_distance
from migrate.capabilities.seed.logical import (
    SeedPlan,
    mydumper_command,
    mysqldump_commands,
    parse_dump_header,
    parse_mydumper_metadata,
)


def test_mariadb_grant_line_loses_its_password_hash():
    line = "GRANT USAGE ON *.* TO `app_rw`@`%` IDENTIFIED BY PASSWORD '*ABCDEF0123456789'"
    assert grants.without_credentials(line) == "GRANT USAGE ON *.* TO `app_rw`@`%`"
    with_option = "GRANT ALL PRIVILEGES ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*AB' WITH GRANT OPTION"
    assert grants.without_credentials(with_option) == "GRANT ALL PRIVILEGES ON *.* TO `a`@`%` WITH GRANT OPTION"


def test_write_privileges_are_everything_but_reading():
    g = grants.parse("GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE, SHOW VIEW ON `shop`.* TO `app_rw`@`%`")
    assert g.write_privileges() == ("INSERT", "UPDATE", "DELETE", "EXECUTE")
    assert g.revoke_sql(g.write_privileges()) == "REVOKE INSERT, UPDATE, DELETE, EXECUTE ON `shop`.* FROM `app_rw`@`%`"
    assert grants.parse("GRANT SELECT ON `shop`.* TO `r`@`%`").write_privileges() == ()


def test_column_privileges_and_all_privileges_are_understood():
    g = grants.parse("GRANT SELECT (`a`, `b`), UPDATE (`a`) ON `shop`.`t` TO `u`@`%`")
    assert g.privileges == ("SELECT (`a`, `b`)", "UPDATE (`a`)") and g.write_privileges() == ("UPDATE (`a`)",)
    assert grants.parse("GRANT ALL PRIVILEGES ON `shop`.* TO `u`@`%` WITH GRANT OPTION").write_privileges() == \
        ("ALL PRIVILEGES",)


def test_a_role_grant_is_refused_because_revoke_cannot_reach_it():
    with pytest.raises(grants.RoleGrantFound):
        grants.parse("GRANT `app_role` TO `app_rw`@`%`")
    assert grants.parse("GRANT PROXY ON ''@'%' TO 'u'@'%'") is None


def test_grant_round_trips_through_the_run_state():
    g = grants.parse("GRANT INSERT ON PROCEDURE `shop`.`p` TO `u`@`%`")
    assert grants.Grant.from_dict(g.as_dict()) == g and g.on == "PROCEDURE `shop`.`p`"


def test_mydumper_metadata_gives_file_position_and_gtid():
    text = ("Started dump at: 2026-11-25 09:16:34\nSHOW MASTER STATUS:\n\tLog: binlog.000001\n\tPos: 4386372\n"
            "\tGTID:0-1-119\n\nFinished dump at: 2026-11-25 09:16:34\n")
    position = parse_mydumper_metadata(text)
    assert (position.file, position.pos, position.gtid_set) == ("binlog.000001", 4386372, "0-1-119")


def test_mariadb_dump_header_gives_file_position_and_gtid():
    header = ("-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n"
              "-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000001', MASTER_LOG_POS=4707572;\n"
              "-- SET GLOBAL gtid_slave_pos='0-1-849';\n")
    position = parse_dump_header(header)
    assert (position.file, position.pos, position.gtid_set) == ("binlog.000001", 4707572, "0-1-849")


def test_mysql_dump_header_gives_file_position_and_gtid_purged():
    header = ("-- SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77';\n"
              "-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000003', SOURCE_LOG_POS=157;\n")
    position = parse_dump_header(header)
    assert position.pos == 157 and position.gtid_set.endswith(":1-77")


def test_a_dump_without_coordinates_is_refused():
    with pytest.raises(Exception, match="no binary log position"):
        parse_dump_header("-- MySQL dump 10.19\n")


def _plan(version: str, global_lock: bool) -> SeedPlan:
    ep = Endpoint("10.0.0.1", 3306, "admin", SecretStr("pw"))
    return SeedPlan(ep, ep, detect(version), ["shop", "_migrate"], 3, 4, "auto", global_lock, "/var/lib/migrate-seed")


def test_mydumper_locks_every_table_where_the_global_lock_is_refused():
    assert "--lock-all-tables" in mydumper_command(_plan("10.11.6-MariaDB", False), "s.cnf", "out")
    argv = mydumper_command(_plan("10.11.6-MariaDB", True), "s.cnf", "out")
    assert "--lock-all-tables" not in argv and argv[argv.index("--regex") + 1] == r"^(shop\.|_migrate\.)"


def test_mysqldump_commands_per_flavor_keep_passwords_in_the_option_file():
    dump, load = mysqldump_commands(_plan("10.11.6-MariaDB", False), "s.cnf", "t.cnf", "d.sql")
    assert dump.startswith("mariadb-dump --defaults-file=s.cnf --master-data=2 --gtid --single-transaction")
    with_myisam = dataclasses.replace(_plan("10.11.6-MariaDB", True), non_transactional=("shop.t (MyISAM)",))
    assert "--lock-all-tables" in mysqldump_commands(with_myisam, "s.cnf", "t.cnf", "d.sql")[0]
    assert "'--init-command=SET SESSION sql_log_bin=0'" in load and "pw" not in dump + load
    dump, _ = mysqldump_commands(_plan("8.0.36", False), "s.cnf", "t.cnf", "d.sql")
    assert "mysqldump --defaults-file=s.cnf --source-data=2 --set-gtid-purged=COMMENTED" in dump


def test_gtid_distance_counts_transactions_per_domain():
    assert mariadb_gtid_distance("0-1-100,1-2-7", "0-1-95,1-2-7") == 5
    assert mariadb_gtid_distance("0-1-100", "") == 100
    assert mariadb_gtid_distance("0-1-100", "0-1-100") == 0


def test_option_file_quotes_the_password_and_spells_tls_per_client():
    ep = Endpoint("db", 3306, "u", SecretStr('p"w\\x'), tls="required", ca_file="/ca.pem")
    text = defaults_file(ep).decode()
    assert 'password="p\\"w\\\\x"' in text and "ssl=1" in text and "ssl-verify-server-cert=1" in text
    assert "ssl-mode=VERIFY_CA" in defaults_file(ep, mysql_tools=True).decode()
