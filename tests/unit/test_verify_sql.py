"""The SQL `migrate verify` sends, pinned for MySQL 8 and MariaDB; the chunk ranges, the keys journaled and the
chunk size. (What the SQL finds on real servers: tests/integration/test_verify.py.)"""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from migrate.adapters.dialect import detect
from migrate.capabilities.verify import checksum
from migrate.capabilities.verify.chunks import Range, Sizer, decode_key, encode_key, next_boundary, where
from migrate.capabilities.verify.inventory import Column, Table, _chunk_key
from migrate.capabilities.verify.result import summarize

MYSQL8 = detect("8.0.36", "MySQL Community Server - GPL")
MYSQL57 = detect("5.7.44-log", "MySQL Community Server (GPL)")
MARIADB = detect("10.11.19-MariaDB-0+deb12u1-log", "Debian 12")

ITEMS = Table("shop", "items", (
    Column("id", "bigint", "bigint unsigned", False),
    Column("name", "varchar", "varchar(32)", True, "utf8mb4_unicode_ci"),
    Column("price", "float", "float", True),
    Column("ratio", "double", "double", False),
    Column("photo", "blob", "blob", True),
    Column("seen_at", "timestamp", "timestamp(6)", False),
), key=("id",), index="PRIMARY")

LINES = Table("shop", "order_lines", (
    Column("order_id", "bigint", "bigint", False),
    Column("line_no", "smallint", "smallint", False),
    Column("sku", "char", "char(8)", False, "utf8mb4_unicode_ci"),
), key=("order_id", "line_no"), index="PRIMARY")

ROW_MARIADB = ("CRC32(CONCAT_WS('#', `id`, `name`, CAST(`price` AS DOUBLE), `ratio`, `photo`, "
               "`seen_at`, CONCAT(ISNULL(`name`), ISNULL(`price`), ISNULL(`photo`)), "
               "CONCAT_WS(',', LENGTH(`name`), LENGTH(`photo`))))")


@pytest.mark.parametrize("dialect", [MARIADB, MYSQL8], ids=["mariadb1011", "mysql80"])
def test_the_chunk_checksum_sums_one_crc32_per_row_with_nulls_lengths_and_exact_floats(dialect):
    stmt = checksum.chunk_checksum(dialect, ITEMS, Range((1000,), (2000,)))
    assert stmt.sql == (f"SELECT COUNT(*) AS n, COALESCE(SUM({ROW_MARIADB}), 0) AS crc_sum FROM `shop`.`items` "
                        "FORCE INDEX (`PRIMARY`) WHERE (`id` > %s) AND (`id` <= %s)")
    assert stmt.params == (1000, 2000)


def test_text_columns_of_different_collations_are_hashed_as_their_bytes():
    table = Table("shop", "names", (Column("id", "int", "int", False),
                                    Column("a", "varchar", "varchar(9)", False, "utf8mb4_general_ci"),
                                    Column("b", "text", "text", True, "latin1_swedish_ci"),
                                    Column("c", "enum", "enum('x','y')", False, "utf8mb4_general_ci")), ("id",), "PRIMARY")
    assert checksum.row_hash(MARIADB, table) == (
        "CRC32(CONCAT_WS('#', `id`, CAST(`a` AS BINARY), CAST(`b` AS BINARY), CAST(`c` AS BINARY), CONCAT(ISNULL(`b`)), "
        "CONCAT_WS(',', LENGTH(`a`), LENGTH(`b`), LENGTH(`c`))))")


def test_mysql_before_8_0_17_widens_a_float_by_adding_a_double_zero():
    assert "(`price` + 0e0)" in checksum.row_hash(MYSQL57, ITEMS)
    assert "CAST(`price` AS DOUBLE)" in checksum.row_hash(MYSQL8, ITEMS)


def test_a_composite_key_range_is_spelled_out_for_the_index():
    sql, params = where(LINES, Range((5, 2), (60, 1)))
    assert sql == ("(`order_id` >= %s AND ((`order_id` > %s) OR (`order_id` = %s AND `line_no` > %s))) AND "
                   "(`order_id` <= %s AND ((`order_id` < %s) OR (`order_id` = %s AND `line_no` <= %s)))")
    assert params == [5, 5, 5, 2, 60, 60, 60, 1]
    assert where(LINES, Range()) == ("1", [])


def test_the_next_boundary_is_the_nth_key_after_the_last_one():
    stmt = next_boundary(LINES, (5, 2), 1000)
    assert stmt.sql == ("SELECT `order_id`, `line_no` FROM `shop`.`order_lines` FORCE INDEX (`PRIMARY`) WHERE "
                        "(`order_id` >= %s AND ((`order_id` > %s) OR (`order_id` = %s AND `line_no` > %s))) "
                        "ORDER BY `order_id`, `line_no` LIMIT 1 OFFSET 999")
    first = next_boundary(ITEMS, None, 10)
    assert first.sql.endswith("WHERE 1 ORDER BY `id` LIMIT 1 OFFSET 9") and first.params == ()


@pytest.mark.parametrize("dialect, clause", [(MARIADB, "LOCK IN SHARE MODE NOWAIT"), (MYSQL8, "FOR SHARE NOWAIT"),
                                             (MYSQL57, "LOCK IN SHARE MODE")], ids=["mariadb1011", "mysql80", "mysql57"])
def test_the_confirmation_locks_the_rows_shared_and_never_waits(dialect, clause):
    stmt = checksum.rows_by_key(dialect, LINES, [(1, 1), (7, 2)], lock=True)
    assert stmt.sql == ("SELECT `order_id`, `line_no`, CRC32(CONCAT_WS('#', `order_id`, `line_no`, `sku`, "
                        "CONCAT_WS(',', LENGTH(`sku`)))) AS crc FROM `shop`.`order_lines` FORCE INDEX "
                        "(`PRIMARY`) WHERE (`order_id` = %s AND `line_no` = %s) OR (`order_id` = %s AND `line_no` = %s) "
                        f"ORDER BY `order_id`, `line_no` {clause}")
    assert stmt.params == (1, 1, 7, 2)
    assert not checksum.rows_by_key(dialect, LINES, [(1, 1)]).sql.endswith(clause)


@pytest.mark.parametrize("dialect, limit", [(MARIADB, "SET SESSION max_statement_time = 120"),
                                            (MYSQL8, "SET SESSION max_execution_time = 120000")],
                         ids=["mariadb1011", "mysql80"])
def test_both_servers_read_in_utc_without_sql_mode_in_repeatable_read_with_a_time_limit(dialect, limit):
    assert [s.sql for s in checksum.session_settings(dialect, 120)] == [
        "SET SESSION time_zone = '+00:00'", "SET SESSION sql_mode = ''",
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ", "SET SESSION innodb_lock_wait_timeout = 1", limit]


def test_mariadb_gives_a_snapshots_exact_coordinates_and_mysql_does_not():
    assert MARIADB.snapshot_position().sql == "SHOW STATUS LIKE 'binlog\\_snapshot\\_%'"
    assert MYSQL8.snapshot_position() is None
    rows = [{"Variable_name": "Binlog_snapshot_file", "Value": "binlog.000003"},
            {"Variable_name": "Binlog_snapshot_position", "Value": "880047"}]
    position = MARIADB.parse_snapshot_position(rows)
    assert (position.file, position.pos) == ("binlog.000003", 880047)
    assert MARIADB.parse_snapshot_position([{"Variable_name": "Binlog_snapshot_file", "Value": ""},
                                            {"Variable_name": "Binlog_snapshot_position", "Value": "0"}]) is None


def test_a_table_without_a_usable_key_is_compared_whole_in_one_query():
    table = Table("shop", "log", (Column("a", "int", "int", True), Column("b", "text", "text", True, "latin1_bin")))
    assert checksum.whole_table(MARIADB, table, lock=True).sql == (
        "SELECT COUNT(*) AS n, COALESCE(SUM(CRC32(CONCAT_WS('#', `a`, `b`, CONCAT(ISNULL(`a`), "
        "ISNULL(`b`)), CONCAT_WS(',', LENGTH(`b`))))), 0) AS crc_sum FROM `shop`.`log` LOCK IN SHARE MODE NOWAIT")


def test_the_chunk_key_is_the_primary_key_else_the_narrowest_whole_unique_not_null_key():
    cols = (Column("a", "int", "int", False), Column("b", "int", "int", True), Column("c", "int", "int", False),
            Column("d", "varchar", "varchar(99)", False))
    assert _chunk_key(cols, {"PRIMARY": [("a", True)], "u": [("c", True)]}) == (("a",), "PRIMARY")
    assert _chunk_key(cols, {"wide": [("a", True), ("c", True)], "narrow": [("c", True)]}) == (("c",), "narrow")
    assert _chunk_key(cols, {"nullable": [("b", True)], "prefix": [("d", False)]}) == ((), None)


def test_keys_read_back_from_the_journal_as_the_values_they_were():
    key = (7, "x", b"\x00\xff", decimal.Decimal("1.50"), dt.datetime(2024, 1, 2, 3, 4, 5, 600), dt.date(2024, 1, 2),
           1.0000001192092896)
    assert decode_key(encode_key(key)) == key
    assert encode_key(None) is None and decode_key(None) is None
    assert encode_key((dt.timedelta(hours=-1, minutes=30),)) == [{"time": "-00:30:00"}]


def test_the_chunk_size_follows_the_time_budget_and_grows_at_most_twice():
    sizer = Sizer(target_s=0.25, start=1000)
    assert sizer.measured(1000, 0.01) == 2000  # 25,000 wanted, doubled only
    assert sizer.measured(2000, 1.0) == 500  # 2,000 rows/s: 500 rows per 0.25 s
    assert sizer.measured(10, 5.0) == 500  # a short last chunk changes nothing
    assert sizer.too_slow() == 50


def test_the_result_names_each_difference_and_is_clean_only_when_every_table_was_compared_to_its_end():
    facts = {"tables": [ITEMS.as_dict()], "primary": "source", "replica": "target", "selection": []}
    chunk = {"table": "shop.items", "after": None, "through": [1000], "rows": 1000, "wall_s": 0.5, "reads": 1,
             "differing_rows": 0, "unverified": 0, "differences": [], "how": "checksums equal"}
    last = dict(chunk, after=[1000], through=None, rows=5, reads=6, differing_rows=1, first_key=[1001],
                last_key=[1005], differences=[{"key": [1003], "kind": "changed"}], how="1 row(s) differ")
    assert not summarize([chunk], facts)["clean"]  # never reached the end of the table
    done = summarize([chunk, last], facts)
    assert not done["clean"] and done["totals"]["rows"] == 1005 and done["totals"]["rechecked_chunks"] == 1
    assert done["differences"] == [{"table": "shop.items", "kind": "rows", "first_key": 1001, "last_key": 1005,
                                    "after": 1000, "through": None, "differing_rows": 1,
                                    "rows": [{"key": 1003, "kind": "changed"}], "detail": "1 row(s) differ"}]
    assert summarize([chunk, dict(last, differing_rows=0, differences=[])], facts)["clean"]
