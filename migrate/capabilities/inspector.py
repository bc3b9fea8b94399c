"""Read-only facts about a server. Nothing here writes: `migrate plan` is built from this module alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from migrate.adapters.db import DatabaseError, Session, Statement, quote_ident
from migrate.adapters.dialect import BinlogPosition

SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
TOOL_SCHEMA = "_migrate"
# Accounts the managed service owns: never carried to the target.
SERVICE_ACCOUNTS = frozenset({"rdsadmin", "rdsrepladmin", "rdstopmgr", "rds_superuser_role", "rdsproxyadmin",
                              "mysql.sys", "mysql.session",
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


def replication_sources(s: Session) -> list[str]:
    """Every server `s` is configured to replicate from, running or stopped: "host:port (running)"."""
    d = s.dialect
    out = []
    for row in s.run(d.all_replica_status()):
        status = d.parse_replica_status(row)
        if status.configured:
            state = "running" if status.io_running and status.sql_running else "stopped"
            name = row.get("Connection_name") or row.get("Channel_Name") or ""
            out.append(f"{status.source_host}:{status.source_port} ({state}{f', connection {name}' if name else ''})")
    return out


def gtid_history(s: Session) -> dict[str, str]:
    """MariaDB: where the binary log stands (binlog_pos), what the server applied as a replica (slave_pos) and the
    state the oldest binary log still held began from (oldest: its Gtid_list event). MySQL: the executed and
    purged sets. Empty without a binary log."""
    if not s.dialect.is_mariadb:
        return s.one(s.dialect.gtid_history()) or {}
    try:
        logs = binary_logs(s)
        row = s.one(s.dialect.gtid_history())
        events = s.run("SHOW BINLOG EVENTS IN %s LIMIT 4", (logs[0][0],)) if logs else []
    except DatabaseError:  # binary logging off, or no BINLOG MONITOR: other checks say which
        return {}
    oldest = next((str(e["Info"]).strip("[]") for e in events if e["Event_type"] == "Gtid_list"), "")
    return {**row, "oldest": oldest}


def proxy_grantees(s: Session) -> list[Account]:
    """Accounts holding a PROXY grant (mysql.proxies_priv; the server's own root entry is not counted)."""
    rows = s.run("SELECT DISTINCT User AS user, Host AS host FROM mysql.proxies_priv WHERE User <> 'root' ORDER BY 1, 2")
    return [Account(r["user"], r["host"]) for r in rows]


def replication_filters(s: Session) -> dict[str, str]:
    return {str(r["name"]).lower(): str(r["value"]) for r in s.run(s.dialect.replication_filters())}


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
    """The current account's global privileges, those of the roles it is given at login included."""
    from migrate.capabilities.grants import global_privileges as on_all

    return on_all(own_grants(s))


def own_grants(s: Session) -> list[str]:
    """This session's grant lines, those of its active roles (enabled at login from its default roles) included."""
    return _lines(s, s.dialect.own_grants(s.value("SELECT CURRENT_ROLE()")))


def login_grants(s: Session, account: Account) -> list[str]:
    """`account`'s grant lines plus those of the roles it gets at login (its default role and the roles granted
    to that one on MariaDB; its default roles on MySQL): what the server checks once it has logged in."""
    from migrate.capabilities import grants

    lines = grants_of(s, account)
    if not s.dialect.is_mariadb:
        roles = s.run(s.dialect.default_roles(), (account.user, account.host))
        if roles:
            using = ", ".join(Account(r["user"], r["host"]).sql() for r in roles)
            return _lines(s, f"SHOW GRANTS FOR {account.sql()} USING {using}")
        return lines
    todo, seen = [grants.default_role(lines)] if grants.default_role(lines) else [], set()
    while todo:
        role = todo.pop()
        if role not in seen:
            seen.add(role)
            role_lines = _lines(s, f"SHOW GRANTS FOR {quote_ident(role)}")
            lines += role_lines
            todo += grants.roles_granted(role_lines)
    return lines


def _lines(s: Session, sql: Statement | str) -> list[str]:
    from migrate.capabilities.grants import without_credentials

    return [without_credentials(next(iter(r.values()))) for r in s.run(sql)]


def global_lock_allowed(privileges: set[str], *, rds: bool) -> bool:
    """FLUSH TABLES WITH READ LOCK needs RELOAD; RDS refuses it even to its master user."""
    return not rds and bool(privileges & {"RELOAD", "ALL PRIVILEGES"})


def can_take_global_read_lock(s: Session, *, rds: bool) -> bool:
    return global_lock_allowed(global_privileges(s), rds=rds)


def binlog_position(s: Session) -> BinlogPosition:
    d = s.dialect
    gtid = s.value(d.binlog_gtid_position()) if d.is_mariadb else None
    return d.parse_binlog_status(s.one(d.binlog_status()), gtid=gtid)


def server_facts(s: Session) -> dict:
    row = s.one("SELECT @@server_id AS server_id, VERSION() AS version, @@read_only AS read_only, "
                "@@binlog_format AS binlog_format")
    return {**row, "dialect": s.dialect.name}


# -- what `migrate plan` reads ----------------------------------------------------------------------

PLAN_VARIABLES = ("log_bin", "binlog_format", "binlog_row_image", "server_id", "sql_mode", "time_zone",
                  "system_time_zone", "lower_case_table_names", "max_allowed_packet", "character_set_server",
                  "collation_server", "read_only", "expire_logs_days", "binlog_expire_logs_seconds",
                  "gtid_mode", "enforce_gtid_consistency", "gtid_strict_mode", "gtid_domain_id",
                  "log_slave_updates", "log_replica_updates", "event_scheduler", "slave_parallel_threads",
                  "replica_parallel_workers", "slave_parallel_workers", "innodb_force_primary_key",
                  "sql_require_primary_key")


def variables(s: Session, names=PLAN_VARIABLES) -> dict[str, object]:
    """The named global variables the server has (one query; unknown names are simply absent)."""
    rows = s.run("SHOW GLOBAL VARIABLES WHERE Variable_name IN (" + _in(names) + ")", tuple(names))
    return {r["Variable_name"]: r["Value"] for r in rows}


def tables_without_primary_key(s: Session, schemas: list[str]) -> list[str]:
    rows = s.run(
        f"SELECT t.table_schema AS s, t.table_name AS n FROM information_schema.tables t "
        f"LEFT JOIN information_schema.table_constraints c ON c.table_schema = t.table_schema "
        f"AND c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY' "
        f"WHERE t.table_type = 'BASE TABLE' AND t.table_schema IN ({_in(schemas)}) AND c.constraint_name IS NULL "
        f"ORDER BY 1, 2", tuple(schemas))
    return [f"{r['s']}.{r['n']}" for r in rows]


def long_transactions(s: Session, older_than_s: int = 60) -> list[dict]:
    return s.run("SELECT trx_mysql_thread_id AS id, TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS age_s "
                 "FROM information_schema.innodb_trx WHERE trx_started < NOW() - INTERVAL %s SECOND "
                 "ORDER BY trx_started", (older_than_s,))


def code_objects(s: Session, schemas: list[str]) -> dict[str, list[dict]]:
    p = tuple(schemas)
    return {
        "triggers": s.run(f"SELECT trigger_schema AS `schema`, trigger_name AS name, definer FROM "
                          f"information_schema.triggers WHERE trigger_schema IN ({_in(schemas)})", p),
        "routines": s.run(f"SELECT routine_schema AS `schema`, routine_name AS name, routine_type AS type, definer "
                          f"FROM information_schema.routines WHERE routine_schema IN ({_in(schemas)})", p),
        "views": s.run(f"SELECT table_schema AS `schema`, table_name AS name, definer FROM information_schema.views "
                       f"WHERE table_schema IN ({_in(schemas)})", p),
        "events": s.run(f"SELECT event_schema AS `schema`, event_name AS name, status, definer FROM "
                        f"information_schema.events WHERE event_schema IN ({_in(schemas)})", p),
    }


def collations_in_use(s: Session, schemas: list[str]) -> list[str]:
    p = tuple(schemas)
    rows = s.run(f"SELECT DISTINCT table_collation AS c FROM information_schema.tables WHERE table_schema IN "
                 f"({_in(schemas)}) AND table_collation IS NOT NULL UNION SELECT DISTINCT collation_name FROM "
                 f"information_schema.columns WHERE table_schema IN ({_in(schemas)}) AND collation_name IS NOT NULL",
                 p + p)
    return sorted(r["c"] for r in rows)


def collations_supported(s: Session) -> set[str]:
    return {r["c"] for r in s.run("SELECT collation_name AS c FROM information_schema.collations")}


def grants_of(s: Session, account: Account) -> list[str]:
    """SHOW GRANTS lines without any password hash (MariaDB prints them)."""
    return _lines(s, f"SHOW GRANTS FOR {account.sql()}")


def rds_configuration(s: Session) -> dict[str, str | None]:
    return {r["name"]: r["value"] for r in s.run(s.dialect.show_rds_configuration())}


RETENTION_VARIABLES = ("binlog_expire_logs_seconds", "expire_logs_days")


def rds_retention_hours(configuration: dict[str, Any] | None) -> int | None:
    """RDS's `binlog retention hours`; None when unset (RDS then purges binlogs almost at once)."""
    hours = (configuration or {}).get("binlog retention hours")
    return None if hours in (None, "", "NULL") else int(hours)


def expire_seconds(variables: dict[str, Any]) -> int | None:
    """How long a self-managed server keeps its binlogs (the newer variable wins); None: they never expire."""
    return int(variables.get("binlog_expire_logs_seconds") or 0) or \
        int(float(variables.get("expire_logs_days") or 0) * 86400) or None


def binlog_retention_seconds(s: Session, *, rds: bool) -> int | None:
    """How long the server keeps its binlogs, read the way its kind sets it (see the two functions above)."""
    if rds:
        hours = rds_retention_hours(rds_configuration(s))
        return None if hours is None else hours * 3600
    return expire_seconds(variables(s, RETENTION_VARIABLES))


def binary_logs(s: Session) -> list[tuple[str, int]]:
    """(file, bytes) of each binary log the server keeps, oldest first (the same statement on MySQL and MariaDB)."""
    return [(r["Log_name"], int(r["File_size"])) for r in s.run("SHOW BINARY LOGS")]


def binlog_write_rate(s: Session, sample_s: float) -> float:
    """Bytes per second the source writes to its binary log, sampled over `sample_s`."""
    import time

    def total() -> int:
        return sum(size for _, size in binary_logs(s))

    before, t0 = total(), time.monotonic()
    time.sleep(sample_s)
    return max(0.0, (total() - before) / (time.monotonic() - t0))


def unix_time(s: Session) -> float:
    return float(s.value("SELECT UNIX_TIMESTAMP(NOW(6))"))
