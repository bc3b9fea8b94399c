"""Read-only facts about a server. Nothing here writes: `migrate plan` is built from this module alone."""

from __future__ import annotations

from dataclasses import dataclass

from migrate.adapters.db import Session, quote_ident
from migrate.adapters.dialect import BinlogPosition

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
TOOL_SCHEMA = "_migrate"
# Accounts the managed service owns: never carried to the target.
SERVICE_ACCOUNTS = frozenset({"rdsadmin", "rdsrepladmin", "rdstopmgr", "mysql.sys", "mysql.session",
                              "mysql.infoschema", "mariadb.sys", "root"})


@dataclass(frozen=True)
class Account:
    user: str
    host: str

    def sql(self) -> str:
        from migrate.adapters.db import quote_account

        return quote_account(self.user, self.host)

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"


def _in(values) -> str:
    return ", ".join(["%s"] * len(values))


def user_schemas(s: Session) -> list[str]:
    rows = s.run(f"SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name NOT IN "
                 f"({_in(SYSTEM_SCHEMAS)}) ORDER BY schema_name", SYSTEM_SCHEMAS)
    return [r["name"] for r in rows]


def schemas_to_copy(s: Session, configured: list[str] | None) -> list[str]:
    """The playbook's list, or every user schema; the tool's own schema always goes along."""
    chosen = list(configured) if configured else user_schemas(s)
    return sorted(set(chosen) | {TOOL_SCHEMA})


def tables(s: Session, schemas: list[str]) -> list[dict]:
    return s.run(f"SELECT table_schema AS `schema`, table_name AS name, engine, table_rows AS est_rows, "
                 f"data_length + index_length AS bytes FROM information_schema.tables "
                 f"WHERE table_type = 'BASE TABLE' AND table_schema IN ({_in(schemas)}) ORDER BY 1, 2", tuple(schemas))


def accounts_of(s: Session, users: list[str]) -> list[Account]:
    if not users:
        return []
    rows = s.run(f"SELECT User AS user, Host AS host FROM mysql.user WHERE User IN ({_in(users)}) ORDER BY 1, 2",
                 tuple(users))
    return [Account(r["user"], r["host"]) for r in rows]


def definers(s: Session, schemas: list[str]) -> list[Account]:
    """Accounts named as DEFINER by triggers, routines, views and events of `schemas`."""
    params = tuple(schemas) * 4
    rows = s.run(
        f"SELECT DEFINER AS d FROM information_schema.triggers WHERE trigger_schema IN ({_in(schemas)}) UNION "
        f"SELECT DEFINER FROM information_schema.routines WHERE routine_schema IN ({_in(schemas)}) UNION "
        f"SELECT DEFINER FROM information_schema.views WHERE table_schema IN ({_in(schemas)}) UNION "
        f"SELECT DEFINER FROM information_schema.events WHERE event_schema IN ({_in(schemas)})", params)
    found = set()
    for r in rows:
        user, _, host = (r["d"] or "").rpartition("@")
        if user:
            found.add(Account(user, host))
    return sorted(found, key=lambda a: (a.user, a.host))


def table_exists(s: Session, schema: str, table: str) -> bool:
    return bool(s.value("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
                        (schema, table)))


def has_grant_on(s: Session, account: Account, schema: str) -> bool:
    """Whether `account` holds a grant naming `schema` (SHOW GRANTS; no password hash is kept)."""
    needle = quote_ident(schema).replace("_", "\\_")
    lines = [next(iter(r.values())) for r in s.run(f"SHOW GRANTS FOR {account.sql()}")]
    return any(f" ON {quote_ident(schema)}." in line or f" ON {needle}." in line for line in lines)


def events(s: Session, schemas: list[str]) -> list[dict]:
    return s.run(f"SELECT event_schema AS `schema`, event_name AS name, status, definer FROM information_schema.events "
                 f"WHERE event_schema IN ({_in(schemas)}) ORDER BY 1, 2", tuple(schemas))


def global_privileges(s: Session) -> set[str]:
    """The current account's global privileges, from SHOW GRANTS (no password hash is kept)."""
    privileges: set[str] = set()
    for row in s.run("SHOW GRANTS FOR CURRENT_USER()"):
        line = next(iter(row.values()))
        head = line.split(" ON ", 1)
        if len(head) == 2 and head[1].startswith("*.*"):
            privileges |= {p.strip().upper() for p in head[0].removeprefix("GRANT ").split(",")}
    return privileges


def can_take_global_read_lock(s: Session, *, rds: bool) -> bool:
    """FLUSH TABLES WITH READ LOCK needs RELOAD; RDS refuses it even to its master user."""
    if rds:
        return False
    privileges = global_privileges(s)
    return bool(privileges & {"RELOAD", "ALL PRIVILEGES"})


def binlog_position(s: Session) -> BinlogPosition:
    d = s.dialect
    gtid = s.value(d.binlog_gtid_position()) if d.is_mariadb else None
    return d.parse_binlog_status(s.one(d.binlog_status()), gtid=gtid)


def server_facts(s: Session) -> dict:
    row = s.one("SELECT @@server_id AS server_id, VERSION() AS version, @@read_only AS read_only, "
                "@@binlog_format AS binlog_format")
    return {**row, "dialect": s.dialect.name}
