"""What `migrate verify` compares: the carried tables, their columns and the key each is chunked along, read
from information_schema on both servers. Read-only, like the inspector.

A table is chunked along its primary key or, without one, a unique key whose columns are all NOT NULL and
whole (no prefix): either orders its rows by a value no two rows share. A table with neither is compared
whole. A table whose definition differs between the servers, or that one of them lacks, is a difference by
itself: its rows are not compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate.adapters.db import Session, quote_ident
from migrate.capabilities import inspector

TRANSACTIONAL = ("INNODB", "ROCKSDB")


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # information_schema's DATA_TYPE, lower case: int, varchar, float, blob, ...
    column_type: str  # the full type: int(10) unsigned, varchar(32), enum('a','b'), ...
    nullable: bool
    collation: str | None = None  # text columns'


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()  # the columns chunks are ordered by; () = compared whole
    index: str | None = None  # the index that orders them (PRIMARY or the unique key's name)
    engine: str = "InnoDB"
    est_rows: int = 0

    @property
    def full_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql_name(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def transactional(self) -> bool:
        return (self.engine or "").upper() in TRANSACTIONAL

    def as_dict(self) -> dict:
        return {"schema": self.schema, "name": self.name, "key": list(self.key), "index": self.index,
                "engine": self.engine, "est_rows": self.est_rows,
                "columns": [[c.name, c.data_type, c.column_type, c.nullable, c.collation] for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> Table:
        return cls(d["schema"], d["name"], tuple(Column(*c) for c in d["columns"]), tuple(d["key"]), d["index"],
                   d["engine"], d["est_rows"])


@dataclass
class Inventory:
    tables: list[Table] = field(default_factory=list)  # compared row by row
    differences: list[dict] = field(default_factory=list)  # tables that differ by definition or existence
    warnings: list[str] = field(default_factory=list)


def carried_schemas(primary: Session, configured: list[str] | None) -> list[str]:
    """The schemas `migrate start` seeds (seed.databases, or every user schema), without the tool's own."""
    return [s for s in inspector.schemas_to_copy(primary, configured) if s != inspector.TOOL_SCHEMA]


def _in(values) -> str:
    return ", ".join(["%s"] * len(values))


def read_tables(s: Session, schemas: list[str]) -> dict[tuple[str, str], Table]:
    """Every base table of `schemas` on `s`, with its columns and chunking key."""
    if not schemas:
        return {}
    p = tuple(schemas)
    rows = s.run(f"SELECT table_schema AS s, table_name AS t, engine, table_rows AS n FROM information_schema.tables "
                 f"WHERE table_type = 'BASE TABLE' AND table_schema IN ({_in(schemas)})", p)
    columns: dict[tuple[str, str], list[Column]] = {}
    for r in s.run(f"SELECT table_schema AS s, table_name AS t, column_name AS c, LOWER(data_type) AS dt, "
                   f"column_type AS ct, is_nullable AS nl, collation_name AS co FROM information_schema.columns "
                   f"WHERE table_schema IN "
                   f"({_in(schemas)}) ORDER BY table_schema, table_name, ordinal_position", p):
        columns.setdefault((r["s"], r["t"]), []).append(
            Column(r["c"], str(r["dt"]), str(r["ct"]), r["nl"] == "YES", r["co"]))
    indexes: dict[tuple[str, str], dict[str, list[tuple[str, bool]]]] = {}
    for r in s.run(f"SELECT table_schema AS s, table_name AS t, index_name AS i, column_name AS c, "
                   f"sub_part IS NULL AS whole FROM information_schema.statistics WHERE non_unique = 0 AND "
                   f"table_schema IN ({_in(schemas)}) ORDER BY table_schema, table_name, index_name, seq_in_index",
                   p):
        indexes.setdefault((r["s"], r["t"]), {}).setdefault(r["i"], []).append((r["c"], bool(r["whole"])))
    found = {}
    for r in rows:
        ident = (r["s"], r["t"])
        cols = tuple(columns.get(ident, []))
        key, index = _chunk_key(cols, indexes.get(ident, {}))
        found[ident] = Table(r["s"], r["t"], cols, key, index, r["engine"] or "", int(r["n"] or 0))
    return found


def _chunk_key(columns: tuple[Column, ...], unique: dict[str, list[tuple[str, bool]]]) -> tuple[tuple[str, ...], str | None]:
    nullable = {c.name for c in columns if c.nullable}
    if "PRIMARY" in unique:
        return tuple(c for c, _ in unique["PRIMARY"]), "PRIMARY"
    usable = [(len(parts), name, tuple(c for c, _ in parts)) for name, parts in unique.items()
              if all(whole and c not in nullable for c, whole in parts)]
    if usable:
        _, name, key = min(usable)  # the narrowest, then by name: the same choice on every run
        return key, name
    return (), None


def take(primary: Session, replica: Session, schemas: list[str], only: list[str] | None = None) -> Inventory:
    """The tables to compare on `primary` (the source, normally) and `replica`, and what differs already."""
    theirs, ours = read_tables(primary, schemas), read_tables(replica, schemas)
    inv = Inventory()
    wanted = sorted(theirs)
    if only:
        wanted = [ident for ident in wanted if f"{ident[0]}.{ident[1]}" in only]
    for ident in wanted:
        table = theirs[ident]
        other = ours.get(ident)
        if other is None:
            inv.differences.append({"table": table.full_name, "kind": "missing_on_replica",
                                    "detail": "the table does not exist on the replica"})
            continue
        if _definition(table) != _definition(other):
            inv.differences.append({"table": table.full_name, "kind": "definition_differs",
                                    "detail": _definition_detail(table, other)})
            continue
        if not table.key:
            inv.warnings.append(f"{table.full_name} has no primary key and no unique NOT NULL key: compared whole, "
                                "in one query (a difference is named by table, not by key range)")
        if not table.transactional:
            inv.warnings.append(f"{table.full_name} is {table.engine}, not transactional: it is read outside any "
                                "consistent snapshot, so a difference is confirmed by re-reading, not exactly")
        inv.tables.append(table)
    if not only:
        for ident in sorted(set(ours) - set(theirs)):
            inv.differences.append({"table": f"{ident[0]}.{ident[1]}", "kind": "extra_on_replica",
                                    "detail": "the table exists on the replica only"})
    return inv


def _definition(t: Table) -> tuple:
    return tuple((c.name, c.column_type.lower(), c.nullable, c.collation) for c in t.columns)


def _definition_detail(a: Table, b: Table) -> str:
    left, right = _definition(a), _definition(b)
    names_a, names_b = [c[0] for c in left], [c[0] for c in right]
    if names_a != names_b:
        return f"columns differ: {', '.join(names_a)} on the primary, {', '.join(names_b)} on the replica"
    def shown(c: tuple) -> str:
        return f"{c[1]}{'' if c[2] else ' NOT NULL'}{f' COLLATE {c[3]}' if c[3] else ''}"

    changed = [f"{x[0]} ({shown(x)} vs {shown(y)})" for x, y in zip(left, right, strict=True) if x != y]
    return "column types differ: " + "; ".join(changed)
