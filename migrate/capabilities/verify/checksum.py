"""The checksum SQL: one hash per row, summed per chunk.

Each row becomes one string, CRC32'd:

    CONCAT_WS('#', v1, ..., vn, <null bitmap>, <lengths>)

- every column, in the table's order, as stored: text columns as their bytes (when the table's text columns
  do not all share one collation, each CAST AS BINARY, so that no conversion between character sets can merge
  two values and MySQL raises no "illegal mix of collations"; when they do, as they are, which is the same
  bytes and about 10 % cheaper), binary and BLOB columns whole, FLOAT widened to DOUBLE
  (the dialect's `exact_float`: MariaDB prints a FLOAT with 6 digits, which merges distinct values), DOUBLE
  and DECIMAL in the digits that read back to the same value, TIMESTAMP in UTC (the session's time zone);
- the null bitmap, ISNULL() of each nullable column: CONCAT_WS skips NULLs, so NULL and '' would otherwise
  hash alike;
- the byte length of each string, binary or BIT value: a value containing '#' cannot shift the boundary
  between two columns ('a#', 'b' and 'a', '#b' hash apart).

Numbers and dates print without '#', so the string reads back to exactly one row: two rows hash alike only
by a CRC32 collision.

A chunk's checksum is COUNT(*) and SUM(CRC32(row)). Not BIT_XOR (pt-table-checksum's): CRC32 is linear over
XOR, so two rows that swap same-length values XOR to the same checksum, and two equal rows cancel out; a sum
of CRCs has neither weakness.
"""

from __future__ import annotations

from typing import Any

from migrate.adapters.db import Statement, quote_ident
from migrate.capabilities.verify.chunks import Range, index_hint, order_by, where
from migrate.capabilities.verify.inventory import Column, Table

TEXT_TYPES = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"})
BINARY_TYPES = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit", "json",
                          "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
                          "multipolygon", "geometrycollection", "geomcollection", "vector"})
SEPARATOR = "#"


def value_expression(dialect: Any, column: Column, *, as_bytes: bool = False) -> str:
    col = quote_ident(column.name)
    if column.data_type in TEXT_TYPES and as_bytes:
        return f"CAST({col} AS BINARY)"
    if column.data_type == "float":
        return dialect.exact_float(col)
    return col


def row_hash(dialect: Any, table: Table) -> str:
    """CRC32 of the row's one-string form (see the module's docstring)."""
    mixed = len({c.collation for c in table.columns if c.data_type in TEXT_TYPES}) > 1
    parts = [value_expression(dialect, c, as_bytes=mixed) for c in table.columns]
    nullable = [c for c in table.columns if c.nullable]
    if nullable:
        parts.append("CONCAT(" + ", ".join(f"ISNULL({quote_ident(c.name)})" for c in nullable) + ")")
    sized = [c for c in table.columns if c.data_type in TEXT_TYPES | BINARY_TYPES]
    if sized:
        parts.append("CONCAT_WS(','" + "".join(f", LENGTH({quote_ident(c.name)})" for c in sized) + ")")
    return f"CRC32(CONCAT_WS('{SEPARATOR}', {', '.join(parts)}))"


def chunk_checksum(dialect: Any, table: Table, rng: Range) -> Statement:
    """COUNT(*) AS n, SUM of the row hashes AS crc_sum over the chunk."""
    sql, params = where(table, rng)
    return Statement(f"SELECT COUNT(*) AS n, COALESCE(SUM({row_hash(dialect, table)}), 0) AS crc_sum "
                     f"FROM {table.sql_name}{index_hint(table)} WHERE {sql}", tuple(params))


def row_hashes(dialect: Any, table: Table, rng: Range) -> Statement:
    """The key and hash of each row of the chunk (to find which rows differ)."""
    sql, params = where(table, rng)
    keys = order_by(table)
    return Statement(f"SELECT {keys}, {row_hash(dialect, table)} AS crc FROM {table.sql_name}{index_hint(table)} "
                     f"WHERE {sql} ORDER BY {keys}", tuple(params))


def rows_by_key(dialect: Any, table: Table, keys: list[tuple], *, lock: bool = False) -> Statement:
    """The key and hash of the rows with these keys; `lock`: a locking read that takes shared locks on them
    (and on the gap where an absent key would be) and never waits for a lock (the dialect's clause)."""
    if not keys:
        raise ValueError("no keys to read")
    cols = [quote_ident(c) for c in table.key]
    one = "(" + " AND ".join(f"{c} = %s" for c in cols) + ")"
    params = [v for key in keys for v in key]
    suffix = f" {dialect.share_lock_clause()}" if lock else ""
    return Statement(f"SELECT {', '.join(cols)}, {row_hash(dialect, table)} AS crc FROM {table.sql_name}"
                     f"{index_hint(table)} WHERE {' OR '.join([one] * len(keys))} ORDER BY {', '.join(cols)}"
                     f"{suffix}", tuple(params))


def whole_table(dialect: Any, table: Table, *, lock: bool = False) -> Statement:
    """The checksum of a table without a usable key, whole; `lock`: as a locking read that never waits."""
    suffix = f" {dialect.share_lock_clause()}" if lock else ""
    return Statement(f"SELECT COUNT(*) AS n, COALESCE(SUM({row_hash(dialect, table)}), 0) AS crc_sum "
                     f"FROM {table.sql_name}{suffix}")


def session_settings(dialect: Any, statement_limit_s: float) -> list[Statement]:
    """The same reading conditions on both servers: UTC (TIMESTAMP prints in the session's zone), no sql_mode
    that changes what a value prints as (PAD_CHAR_TO_FULL_LENGTH), REPEATABLE READ (a consistent snapshot; a
    locking read that also locks the gaps), short lock waits, and a time limit on every statement."""
    return [Statement("SET SESSION time_zone = '+00:00'"),
            Statement("SET SESSION sql_mode = ''"),
            Statement("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
            Statement("SET SESSION innodb_lock_wait_timeout = 1"),
            dialect.statement_time_limit(statement_limit_s)]
