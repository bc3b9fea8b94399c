"""The SQL that differs between MySQL 5.7 / 8.0 / 8.4 and MariaDB, in one place.

`detect()` picks a `Dialect` from `SELECT VERSION()` and `@@version_comment`; the rest of `migrate`
asks it for statements and never spells SLAVE, REPLICA, MASTER or SOURCE itself. Statements carry
their values as parameters, so a replication password is never part of `Statement.sql`.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from migrate.adapters.db import Statement, quote_string
from migrate.errors import Refused

Flavor = Literal["mysql", "mariadb"]
WaitOutcome = Literal["reached", "timeout", "not_replicating"]

_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
# MariaDB GTID positions: domain-server-sequence, comma separated ("0-1-42,1-2-7").
_MARIADB_GTID = re.compile(r"\d+-\d+-\d+(\s*,\s*\d+-\d+-\d+)*")


class Unsupported(Refused, NotImplementedError):
    """This server (flavor, version, RDS or not) cannot do what was asked; nothing was sent."""


def detect(version: str, comment: str = "", *, rds: bool = False) -> Dialect:
    """The dialect of a server from `SELECT VERSION()` and `@@version_comment`.

    MariaDB before 11 may report "5.5.5-10.6.14-MariaDB": the 5.5.5- prefix only kept old MySQL
    replicas happy and is skipped.
    """
    text = (version or "").strip()
    mariadb = "mariadb" in text.lower() or "mariadb" in (comment or "").lower()
    if mariadb and re.match(r"5\.5\.5-\d", text):
        text = text[len("5.5.5-"):]
    m = _VERSION.match(text)
    if not m:
        raise ValueError(f"cannot tell the server version from VERSION() = {version!r} "
                         f"(version_comment {comment!r}); expected something like '8.0.35' or '10.11.6-MariaDB'")
    parsed = (int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    return Dialect("mariadb" if mariadb else "mysql", parsed, rds)


@dataclass(frozen=True)
class ReplicaStatus:
    """SHOW SLAVE/REPLICA STATUS of any flavor, under one set of names."""

    configured: bool
    io_state: Literal["running", "connecting", "stopped"] = "stopped"
    sql_running: bool = False
    seconds_behind: int | None = None
    source_host: str | None = None
    source_port: int | None = None
    source_log_file: str | None = None  # the source's binlog the IO thread is reading
    read_source_log_pos: int | None = None
    exec_source_log_file: str | None = None  # the source's binlog of the last applied event
    exec_source_log_pos: int | None = None
    last_io_errno: int = 0
    last_io_error: str = ""
    last_sql_errno: int = 0
    last_sql_error: str = ""
    retrieved_gtid_set: str | None = None
    executed_gtid_set: str | None = None  # MySQL Executed_Gtid_Set; MariaDB Gtid_Slave_Pos
    using_gtid: bool = False
    relay_log_space: int | None = None  # bytes of relay log the replica holds

    @property
    def io_running(self) -> bool:
        return self.io_state == "running"

    @property
    def healthy(self) -> bool:
        return self.io_running and self.sql_running and not self.last_io_errno and not self.last_sql_errno

    @property
    def last_error(self) -> str | None:
        """The applier's error first (it is the one that stops data), then the receiver's."""
        for errno, text in ((self.last_sql_errno, self.last_sql_error), (self.last_io_errno, self.last_io_error)):
            if errno or text:
                return f"({errno}) {text}"
        return None


@dataclass(frozen=True)
class BinlogPosition:
    file: str
    pos: int
    gtid_set: str | None = None


def native_password_hash(password: str) -> str:
    """mysql_native_password's stored form, `*` + SHA1(SHA1(password)) in hex: what the server keeps, which
    cannot log in by itself."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


def _pick(row: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in row:
            return row[name]
    return None


def _int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _text(value: Any) -> str | None:
    """A GTID set or name as one line: MySQL wraps long GTID sets with newlines."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    value = str(value).replace("\n", "").strip()
    return value or None


def _truthy(value: Any) -> bool:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return value.strip().upper() not in ("", "0", "OFF", "NO", "FALSE")
    return bool(value)


def _seconds(timeout_s: float) -> int:
    """Whole seconds, at least 1: to the wait functions 0 or less means "wait forever"."""
    if timeout_s is None or timeout_s <= 0:
        raise ValueError(f"a wait needs a positive timeout, got {timeout_s!r}")
    return max(1, math.ceil(timeout_s))


def _number(value: float) -> str:
    return f"{float(value):.3f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Dialect:
    flavor: Flavor
    version: tuple[int, int, int]
    rds: bool = False

    # -- what this server is -------------------------------------------------------------------

    @property
    def name(self) -> str:
        label = "MariaDB" if self.flavor == "mariadb" else "MySQL"
        return f"{label} {'.'.join(map(str, self.version))}" + (" (RDS)" if self.rds else "")

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == "mariadb"

    def _mysql_at_least(self, *v: int) -> bool:
        return self.flavor == "mysql" and self.version >= v

    def _mariadb_at_least(self, *v: int) -> bool:
        return self.flavor == "mariadb" and self.version >= v

    @property
    def supports_gtid_auto_position(self) -> bool:
        """MySQL's MASTER/SOURCE_AUTO_POSITION; MariaDB has MASTER_USE_GTID instead."""
        return self._mysql_at_least(5, 7)

    @property
    def has_super_read_only(self) -> bool:
        return self._mysql_at_least(5, 7, 8)

    @property
    def _replica_words(self) -> bool:
        """START/STOP/SHOW/RESET REPLICA exist (MySQL 8.0.22, MariaDB 10.5.1); the SLAVE forms are gone in 8.4."""
        return self._mysql_at_least(8, 0, 22) or self._mariadb_at_least(10, 5, 1)

    @property
    def _source_words(self) -> bool:
        """CHANGE REPLICATION SOURCE TO and SOURCE_* options (MySQL 8.0.23+; the only form in 8.4)."""
        return self._mysql_at_least(8, 0, 23)

    @property
    def _rds_source_procs(self) -> bool:
        """RDS renamed its *_external_master procedures to *_external_source for MySQL 8.4."""
        return self._mysql_at_least(8, 4)

    @property
    def log_replica_updates_variable(self) -> str:
        return "log_replica_updates" if self._mysql_at_least(8, 0, 26) else "log_slave_updates"

    def _replica(self) -> str:
        return "REPLICA" if self._replica_words else "SLAVE"

    @property
    def replication_password_max(self) -> int:
        """The longest password a replica's connection settings take: MySQL refuses more than 32 characters
        (error 3056); MariaDB 10.11 more than 96 (error 1470, measured)."""
        return 96 if self.is_mariadb else 32

    def target_user_needs(self) -> list[tuple[str, frozenset[str]]]:
        """What target.user must hold on *.*, each with the privileges that also give it: it loads every
        object (views and routines of other DEFINERs), creates every account with its grants, configures and
        stops replication, and sets read_only. ALL PRIVILEGES gives everything but GRANT OPTION."""
        data = ["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES",
                "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "EXECUTE", "TRIGGER", "EVENT",
                "LOCK TABLES", "CREATE TEMPORARY TABLES", "CREATE USER", "REPLICATION SLAVE", "RELOAD", "PROCESS"]
        needs = [(p, frozenset({p})) for p in data] + [("GRANT OPTION", frozenset({"GRANT OPTION"}))]
        if self.is_mariadb:  # SUPER stopped giving READ_ONLY ADMIN in 10.11; REPLICATION CLIENT is BINLOG MONITOR
            needs += [("BINLOG MONITOR", frozenset({"BINLOG MONITOR", "REPLICATION CLIENT"})),
                      ("SLAVE MONITOR", frozenset({"SLAVE MONITOR", "REPLICA MONITOR", "SUPER"})),
("REPLICATION SLAVE ADMIN", frozenset({"REPLICATION SLAVE ADMIN", "SUPER"})),
                      ("SET USER", frozenset({"SET USER", "SUPER"})),
                      ("READ_ONLY ADMIN", frozenset({"READ_ONLY ADMIN"} | (set() if self.version >= (10, 11, 0)
                                                                          else {"SUPER"})))]
        else:
            needs += [("REPLICATION CLIENT", frozenset({"REPLICATION CLIENT"})),
                      ("REPLICATION_SLAVE_ADMIN", frozenset({"REPLICATION_SLAVE_ADMIN", "SUPER"})),
                      ("SYSTEM_VARIABLES_ADMIN", frozenset({"SYSTEM_VARIABLES_ADMIN", "SUPER"})),
                      ("SET_USER_ID", frozenset({"SET_USER_ID", "SET_ANY_DEFINER", "SUPER"}))]
        return [(name, gives | {"ALL PRIVILEGES"} if name != "GRANT OPTION" else gives) for name, gives in needs]

    def read_only_setters(self) -> frozenset[str]:
        """Global privileges that let an account SET GLOBAL read_only (MariaDB 10.11 took READ_ONLY ADMIN out of
        SUPER)."""
        if self.is_mariadb:
            return frozenset({"READ_ONLY ADMIN", "ALL PRIVILEGES"} | (set() if self.version >= (10, 11, 0)
                                                                    else {"SUPER"}))
        return frozenset({"SUPER", "SYSTEM_VARIABLES_ADMIN", "ALL PRIVILEGES"})

    def read_only_bypassers(self) -> frozenset[str]:
        """Global privileges whose holders still write while read_only is ON: MariaDB's READ_ONLY ADMIN (SUPER
        before 10.11); none on MySQL, where super_read_only goes on too."""
        if self.has_super_read_only:
            return frozenset()
        return self.read_only_setters() if self.is_mariadb else frozenset({"SUPER", "ALL PRIVILEGES"})

    # -- replica threads ---------------------------------------------------------------------

    def replica_status(self) -> Statement:
        return Statement(f"SHOW {self._replica()} STATUS")

    def accounts(self) -> Statement:
        """Every account and role: (user, host, is_role). MySQL keeps roles as locked accounts; those granted to
        another account (mysql.role_edges) are listed as roles so that they are created first."""
        if self.is_mariadb:
            return Statement("SELECT User AS user, Host AS host, is_role = 'Y' AS is_role FROM mysql.user "
                             "ORDER BY is_role DESC, User, Host")
        return Statement("SELECT u.User AS user, u.Host AS host, EXISTS (SELECT 1 FROM mysql.role_edges e WHERE "
                         "e.FROM_USER = u.User AND e.FROM_HOST = u.Host) AS is_role FROM mysql.user u "
                         "ORDER BY is_role DESC, u.User, u.Host")

    def own_grants(self, current_roles: str | None) -> Statement:
        """This session's grants with those of its active roles (`current_roles`: SELECT CURRENT_ROLE()):
        MariaDB's SHOW GRANTS adds the current role's itself; MySQL's needs the roles named (USING)."""
        if self.is_mariadb:
            return Statement("SHOW GRANTS")
        using = f" USING {current_roles}" if current_roles and current_roles != "NONE" else ""
        return Statement(f"SHOW GRANTS FOR CURRENT_USER(){using}")

    def gtid_history(self) -> Statement:
        """MariaDB: where the binary log stands and what the server applied as a replica; MySQL: its executed
        and purged GTID sets."""
        if self.is_mariadb:
            return Statement("SELECT @@gtid_binlog_pos AS binlog_pos, @@gtid_slave_pos AS slave_pos")
        return Statement("SELECT @@global.gtid_executed AS executed, @@global.gtid_purged AS purged")

    def default_roles(self) -> Statement:
        """MySQL: the roles an account (user, host parameters) gets at login. MariaDB names its one default
        role in SHOW GRANTS instead."""
        return Statement("SELECT DEFAULT_ROLE_USER AS user, DEFAULT_ROLE_HOST AS host FROM mysql.default_roles "
                         "WHERE USER = %s AND HOST = %s ORDER BY 1, 2")

    def all_replica_status(self) -> Statement:
        """Every replication connection (MariaDB's named ones, MySQL's channels), one row each."""
        return Statement(f"SHOW ALL {self._replica()}S STATUS" if self.is_mariadb else f"SHOW {self._replica()} STATUS")

    def replication_filters(self) -> Statement:
        """The replica's filters, one (name, value) row per filter set: MariaDB keeps them in global variables,
        MySQL 8 in performance_schema (per channel or global)."""
        if self.is_mariadb:
            return Statement("SELECT variable_name AS name, variable_value AS value FROM "
                             "information_schema.global_variables WHERE variable_name IN ('REPLICATE_DO_DB', "
                             "'REPLICATE_IGNORE_DB', 'REPLICATE_DO_TABLE', 'REPLICATE_IGNORE_TABLE', "
                             "'REPLICATE_WILD_DO_TABLE', 'REPLICATE_WILD_IGNORE_TABLE', 'REPLICATE_REWRITE_DB') AND "
                             "variable_value <> ''")
        return Statement("SELECT filter_name AS name, filter_rule AS value FROM "
                         "performance_schema.replication_applier_global_filters WHERE filter_rule <> ''")

    def start_replica(self) -> Statement:
        return Statement(f"START {self._replica()}")

    def stop_replica(self) -> Statement:
        return Statement(f"STOP {self._replica()}")

    def stop_replica_sql_thread(self) -> Statement:
        return Statement(f"STOP {self._replica()} SQL_THREAD")

    def stop_replica_io_thread(self) -> Statement:
        return Statement(f"STOP {self._replica()} IO_THREAD")

    def start_replica_sql_thread(self) -> Statement:
        return Statement(f"START {self._replica()} SQL_THREAD")

    def reset_replica_all(self) -> Statement:
        """Forget the source entirely (connection settings included); the replica threads must be stopped."""
        return Statement(f"RESET {self._replica()} ALL")

    def create_user(self, user: str, password: str, host: str = "%", *, if_not_exists: bool = False) -> Statement:
        """CREATE USER whose password never reaches a server's logs or its replicas in clear. MySQL rewrites
        `IDENTIFIED BY` with the hash in its binary, general and slow logs itself; MariaDB writes the statement as
        sent, so it gets the mysql_native_password hash (its default plugin), computed here."""
        create = "CREATE USER IF NOT EXISTS" if if_not_exists else "CREATE USER"
        if self.is_mariadb:
            return Statement(f"{create} %s@%s IDENTIFIED BY PASSWORD %s", (user, host, native_password_hash(password)),
                             secret_params=frozenset({2}))
        return Statement(f"{create} %s@%s IDENTIFIED BY %s", (user, host, password), secret_params=frozenset({2}))

    def grant_replication(self, user: str, host: str = "%") -> Statement:
        """The one privilege a replication account needs on its source."""
        return Statement("GRANT REPLICATION SLAVE ON *.* TO %s@%s", (user, host))

    def replica_gtid_position(self) -> Statement:
        """What the replica has applied: MariaDB's SHOW REPLICA STATUS has no such column (only SHOW ALL
        REPLICAS STATUS does), so read it here and pass it to `parse_replica_status(row, gtid)`."""
        if self.is_mariadb:
            return Statement("SELECT @@GLOBAL.gtid_slave_pos AS gtid")
        return Statement("SELECT @@GLOBAL.gtid_executed AS gtid")

    def parse_replica_status(self, row: dict[str, Any] | None, gtid: str | None = None) -> ReplicaStatus:
        """Normalize a SHOW SLAVE/REPLICA STATUS row: old (Master_*) or new (Source_*) column names.

        MariaDB (10.11 included) answers SHOW REPLICA STATUS with the old Slave_*/Master_* names, and
        without Gtid_Slave_Pos: give `gtid` (from `replica_gtid_position()`) to fill `executed_gtid_set`.
        """
        if not row:
            return ReplicaStatus(configured=False)
        io = str(_pick(row, "Replica_IO_Running", "Slave_IO_Running") or "No").strip().lower()
        if "Using_Gtid" in row or "Gtid_Slave_Pos" in row:  # MariaDB
            executed = _text(row.get("Gtid_Slave_Pos")) or _text(gtid)
            retrieved = _text(row.get("Gtid_IO_Pos"))
            using_gtid = str(row.get("Using_Gtid") or "No").strip().lower() != "no"
        else:
            executed = _text(row.get("Executed_Gtid_Set")) or _text(gtid)
            retrieved = _text(row.get("Retrieved_Gtid_Set"))
            using_gtid = _int(row.get("Auto_Position")) == 1
        return ReplicaStatus(
            configured=True,
            io_state="running" if io == "yes" else "connecting" if io == "connecting" else "stopped",
            sql_running=str(_pick(row, "Replica_SQL_Running", "Slave_SQL_Running") or "").strip().lower() == "yes",
            seconds_behind=_int(_pick(row, "Seconds_Behind_Source", "Seconds_Behind_Master")),
            source_host=_text(_pick(row, "Source_Host", "Master_Host")),
            source_port=_int(_pick(row, "Source_Port", "Master_Port")),
            source_log_file=_text(_pick(row, "Source_Log_File", "Master_Log_File")),
            read_source_log_pos=_int(_pick(row, "Read_Source_Log_Pos", "Read_Master_Log_Pos")),
            exec_source_log_file=_text(_pick(row, "Relay_Source_Log_File", "Relay_Master_Log_File")),
            exec_source_log_pos=_int(_pick(row, "Exec_Source_Log_Pos", "Exec_Master_Log_Pos")),
            last_io_errno=_int(row.get("Last_IO_Errno")) or 0,
            last_io_error=str(row.get("Last_IO_Error") or ""),
            last_sql_errno=_int(row.get("Last_SQL_Errno")) or 0,
            last_sql_error=str(row.get("Last_SQL_Error") or ""),
            retrieved_gtid_set=retrieved,
            executed_gtid_set=executed,
            using_gtid=using_gtid,
            relay_log_space=_int(row.get("Relay_Log_Space")),
        )

    # -- the source's binary log -------------------------------------------------------------

    def reset_binary_logs(self) -> Statement:
        """Delete every binary log and forget the executed GTIDs (RESET MASTER was removed in 8.4)."""
        return Statement("RESET BINARY LOGS AND GTIDS" if self._mysql_at_least(8, 2) else "RESET MASTER")

    def set_gtid_purged(self, gtid_set: str) -> Statement:
        """MySQL: declare a seeded replica's history (after reset_binary_logs) for GTID auto-position."""
        if self.is_mariadb:
            raise Unsupported("MariaDB has no gtid_purged: its replica starts from gtid_slave_pos "
                              "(change_source(gtid=...))")
        return Statement("SET GLOBAL gtid_purged = %s", (gtid_set,))

    @property
    def online_redo_log_variable(self) -> str | None:
        """The redo log size a running server can change: MariaDB 10.9+, MySQL 8.0.30+ (else None)."""
        if self.is_mariadb:
            return "innodb_log_file_size" if self.version >= (10, 9, 0) else None
        return "innodb_redo_log_capacity" if self._mysql_at_least(8, 0, 30) else None

    def binlog_status(self) -> Statement:
        """SHOW BINARY LOG STATUS from MySQL 8.2 (8.4 removed SHOW MASTER STATUS)."""
        return Statement("SHOW BINARY LOG STATUS" if self._mysql_at_least(8, 2) else "SHOW MASTER STATUS")

    def parse_binlog_status(self, row: dict[str, Any] | None, gtid: str | None = None) -> BinlogPosition:
        """MySQL's row carries Executed_Gtid_Set; for MariaDB pass the value of `binlog_gtid_position()`."""
        if not row or not row.get("File"):
            raise Unsupported(f"{self.name} returned no binary log position: binary logging is off",
                              hint="enable log_bin on this server (it needs a restart) and try again")
        gtid_set = _text(row.get("Executed_Gtid_Set")) if "Executed_Gtid_Set" in row else None
        return BinlogPosition(file=str(row["File"]), pos=int(row["Position"]), gtid_set=gtid_set or _text(gtid))

    def binlog_gtid_position(self) -> Statement:
        if self.is_mariadb:
            return Statement("SELECT @@GLOBAL.gtid_binlog_pos AS gtid")
        return Statement("SELECT @@GLOBAL.gtid_executed AS gtid")

    def gtid_at(self, log_file: str, log_pos: int) -> Statement:
        """The MariaDB GTID position matching a binlog file/position (for a snapshot's coordinates).

        It answers NULL for a file the server does not have and '' for a position before the first
        GTID; `change_source` refuses both.
        """
        if not self.is_mariadb:
            raise Unsupported(f"{self.name} has no function mapping a binlog position to GTIDs",
                              hint="use the GTID set recorded with the snapshot (Executed_Gtid_Set / gtid_executed)")
        return Statement("SELECT BINLOG_GTID_POS(%s, %s) AS gtid", (log_file, int(log_pos)))

    # -- configuring a replica -------------------------------------------------------------

    def change_source(self, host: str, port: int, user: str, password: str, *, log_file: str | None = None,
                      log_pos: int | None = None, gtid: str | None = None, auto_position: bool = False,
                      tls: bool = False, ca_file: str | None = None, connect_retry: int = 10,
                      heartbeat_s: float | None = None) -> list[Statement]:
        """Point this server at a source: by file/position, by GTID (MariaDB) or auto-position (MySQL).

        Every connection option is spelled out, because CHANGE MASTER keeps whatever an earlier one set.
        """
        if (log_file is None) != (log_pos is None):
            raise ValueError("give log_file and log_pos together")
        if log_file is not None and (not str(log_file).strip() or int(log_pos) < 4):
            raise ValueError(f"not a binlog position: {log_file!r} {log_pos!r}")
        if ca_file and not tls:
            raise ValueError("ca_file given but tls is off")
        by_file = log_file is not None
        if self.is_mariadb:
            if auto_position:
                raise ValueError("MariaDB has no auto-position: pass gtid= (the snapshot's GTID position) "
                                 "or log_file/log_pos")
            if gtid is not None:
                gtid = self._checked_mariadb_gtid(gtid)
            if by_file == (gtid is not None):
                raise ValueError("MariaDB needs exactly one starting point: gtid=, or log_file/log_pos")
        else:
            if gtid is not None:
                raise ValueError("MySQL takes no GTID in CHANGE REPLICATION SOURCE: set gtid_purged on the "
                                 "replica and use auto_position=True")
            if auto_position and not self.supports_gtid_auto_position:
                raise Unsupported(f"{self.name} has no GTID auto-position", hint="use log_file/log_pos")
            if by_file == auto_position:
                raise ValueError("MySQL needs exactly one starting point: log_file/log_pos, or auto_position=True")

        p = "SOURCE" if self._source_words else "MASTER"
        parts = [f"{p}_HOST=%s", f"{p}_PORT={int(port)}", f"{p}_USER=%s", f"{p}_PASSWORD=%s",
                 f"{p}_CONNECT_RETRY={int(connect_retry)}"]
        params: list[Any] = [host, user, password]
        secret = frozenset({2})
        if heartbeat_s is not None:
            parts.append(f"{p}_HEARTBEAT_PERIOD={_number(heartbeat_s)}")
        if by_file:
            parts += [f"{p}_LOG_FILE=%s", f"{p}_LOG_POS={int(log_pos)}"]
            params.append(log_file)
        if self.is_mariadb:
            parts.append("MASTER_USE_GTID=" + ("no" if by_file else "slave_pos"))
        elif self.supports_gtid_auto_position:
            parts.append(f"{p}_AUTO_POSITION={1 if auto_position else 0}")
        parts.append(f"{p}_SSL={1 if tls else 0}")
        if ca_file:
            parts.append(f"{p}_SSL_CA=%s")
            params.append(ca_file)
        if not tls and self._mysql_at_least(8, 0, 4):
            # caching_sha2_password (8.0's default) over a plain connection needs the server's RSA key.
            parts.append(f"GET_{p}_PUBLIC_KEY=1")

        change = "CHANGE REPLICATION SOURCE TO " if self._source_words else "CHANGE MASTER TO "
        statements = []
        if self.is_mariadb and gtid is not None:
            statements.append(Statement("SET GLOBAL gtid_slave_pos = %s", (gtid,)))
        statements.append(Statement(change + ", ".join(parts), tuple(params), secret))
        return statements

    @staticmethod
    def _checked_mariadb_gtid(gtid: str) -> str:
        value = (gtid or "").strip()
        if not value:
            # An empty gtid_slave_pos makes the replica fetch the source's binlogs from the very first one.
            raise ValueError("refusing an empty MariaDB GTID position: the replica would replay the source's "
                             "binlogs from the first file; use the snapshot's position (BINLOG_GTID_POS) or "
                             "log_file/log_pos")
        if not _MARIADB_GTID.fullmatch(value):
            raise ValueError(f"not a MariaDB GTID position (domain-server-seq[,...]): {gtid!r}")
        return re.sub(r"\s+", "", value)

    # -- waiting for a replica -------------------------------------------------------------

    def wait_for_position(self, log_file: str, log_pos: int, timeout_s: float) -> Statement:
        fn = "SOURCE_POS_WAIT" if self._mysql_at_least(8, 0, 26) else "MASTER_POS_WAIT"
        return Statement(f"SELECT {fn}(%s, %s, %s) AS result", (log_file, int(log_pos), _seconds(timeout_s)))

    def wait_for_gtid(self, gtid_set: str, timeout_s: float) -> Statement:
        if self.is_mariadb:
            return Statement("SELECT MASTER_GTID_WAIT(%s, %s) AS result",
                             (self._checked_mariadb_gtid(gtid_set), _seconds(timeout_s)))
        if not _text(gtid_set):
            raise ValueError("refusing to wait for an empty GTID set: it is reached at once and proves nothing")
        return Statement("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s) AS result", (_text(gtid_set), _seconds(timeout_s)))

    def wait_outcome(self, kind: Literal["position", "gtid"], value: Any) -> WaitOutcome:
        """What a wait function's result means.

        MASTER/SOURCE_POS_WAIT: events waited for (>= 0), -1 timeout, NULL when the SQL thread is not
        running or the replica is not configured. WAIT_FOR_EXECUTED_GTID_SET: 0 reached, 1 timeout.
        MASTER_GTID_WAIT: 0 reached, -1 timeout (NULL only for a NULL position).
        """
        if value is None:
            return "not_replicating"
        n = int(value)
        if kind == "position":
            return "reached" if n >= 0 else "timeout"
        if kind != "gtid":
            raise ValueError(f"unknown wait kind {kind!r}")
        reached, timeout = (0, -1) if self.is_mariadb else (0, 1)
        if n == reached:
            return "reached"
        if n == timeout:
            return "timeout"
        raise ValueError(f"unexpected result {value!r} from a GTID wait on {self.name}")

    def ignore_tables(self, pattern: str) -> Statement:
        """A replica filter that skips the tables matching `pattern` (LIKE syntax, schema.table); the replica's
        SQL thread must be stopped. MariaDB keeps it in a global variable, MySQL in CHANGE REPLICATION FILTER;
        neither survives a restart unless the server's configuration says it too."""
        if self.is_mariadb:
            return Statement("SET GLOBAL replicate_wild_ignore_table = %s", (pattern,))
        return Statement(f"CHANGE REPLICATION FILTER REPLICATE_WILD_IGNORE_TABLE = ({quote_string(pattern)})")

    # -- read_only -----------------------------------------------------------------------------

    def set_read_only(self, on: bool) -> list[Statement]:
        """Order matters: super_read_only needs read_only under it, so it goes on last and off first."""
        if self.rds:
            raise Unsupported(f"{self.name}: SET GLOBAL read_only needs SUPER, which RDS does not grant",
                              hint="set read_only in the DB parameter group, or block writes by revoking grants")
        value = "ON" if on else "OFF"
        if not self.has_super_read_only:
            return [Statement(f"SET GLOBAL read_only = {value}")]
        order = ["read_only", "super_read_only"] if on else ["super_read_only", "read_only"]
        return [Statement(f"SET GLOBAL {var} = {value}") for var in order]

    def read_only_status(self) -> Statement:
        if self.has_super_read_only:
            return Statement("SELECT @@GLOBAL.read_only AS read_only, @@GLOBAL.super_read_only AS super_read_only")
        return Statement("SELECT @@GLOBAL.read_only AS read_only, 0 AS super_read_only")

    @staticmethod
    def parse_read_only(row: dict[str, Any] | None) -> tuple[bool, bool]:
        """(read_only, super_read_only) from a `read_only_status()` row; 0/1 or OFF/ON/NO_LOCK... alike."""
        row = row or {}
        return _truthy(row.get("read_only")), _truthy(row.get("super_read_only"))

    # -- sessions ------------------------------------------------------------------------------

    def kill(self, connection_id: int) -> Statement:
        if self.rds:
            return Statement("CALL mysql.rds_kill(%s)", (int(connection_id),))
        return Statement("KILL CONNECTION %s", (int(connection_id),))

    def kill_query(self, connection_id: int) -> Statement:
        if self.rds:
            return Statement("CALL mysql.rds_kill_query(%s)", (int(connection_id),))
        return Statement("KILL QUERY %s", (int(connection_id),))

    def set_sql_log_bin(self, on: bool) -> Statement:
        if self.rds:
            raise Unsupported(f"{self.name}: sql_log_bin cannot be changed by the RDS master user",
                              hint="whatever this session writes will reach the binlog and every replica")
        return Statement(f"SET SESSION sql_log_bin = {1 if on else 0}")

    # -- RDS procedures --------------------------------------------------------------------

    def _require_rds(self, what: str) -> None:
        if not self.rds:
            raise Unsupported(f"{what} is an Amazon RDS procedure; {self.name} is not RDS")

    def set_binlog_retention(self, hours: int) -> Statement:
        self._require_rds("mysql.rds_set_configuration")
        if int(hours) < 1:
            raise ValueError("binlog retention must be at least 1 hour (NULL lets RDS purge binlogs at once)")
        return Statement("CALL mysql.rds_set_configuration('binlog retention hours', %s)", (int(hours),))

    def show_rds_configuration(self) -> Statement:
        self._require_rds("mysql.rds_show_configuration")
        return Statement("CALL mysql.rds_show_configuration")

    def set_external_source(self, host: str, port: int, user: str, password: str, *, log_file: str,
                            log_pos: int, ssl: bool) -> Statement:
        """Make this RDS instance a replica of a server outside RDS, from a binlog file/position."""
        proc = "rds_set_external_source" if self._rds_source_procs else "rds_set_external_master"
        self._require_rds(f"mysql.{proc}")
        if not log_file or int(log_pos) < 4:
            raise ValueError(f"not a binlog position: {log_file!r} {log_pos!r}")
        return Statement(f"CALL mysql.{proc}(%s, {int(port)}, %s, %s, %s, {int(log_pos)}, {int(bool(ssl))})",
                         (host, user, password, log_file), frozenset({2}))

    def set_external_source_gtid(self, host: str, port: int, user: str, password: str, *,
                                 gtid: str | None = None, ssl: bool) -> Statement:
        """Same, by GTID: MariaDB from `gtid` (required); MySQL by auto-position (`gtid` must be None)."""
        if self.is_mariadb:
            self._require_rds("mysql.rds_set_external_master_gtid")
            return Statement(f"CALL mysql.rds_set_external_master_gtid(%s, {int(port)}, %s, %s, %s, {int(bool(ssl))})",
                             (host, user, password, self._checked_mariadb_gtid(gtid or "")), frozenset({2}))
        proc = ("rds_set_external_source_with_auto_position" if self._rds_source_procs
                else "rds_set_external_master_with_auto_position")
        self._require_rds(f"mysql.{proc}")
        if gtid is not None:
            raise ValueError("MySQL replicates by auto-position here: set gtid_purged first, pass no gtid")
        # The last argument is the replication delay in seconds.
        return Statement(f"CALL mysql.{proc}(%s, {int(port)}, %s, %s, {int(bool(ssl))}, 0)",
                         (host, user, password), frozenset({2}))

    def reset_external_source(self) -> Statement:
        proc = "rds_reset_external_source" if self._rds_source_procs else "rds_reset_external_master"
        self._require_rds(f"mysql.{proc}")
        return Statement(f"CALL mysql.{proc}")

    def rds_start_replication(self) -> Statement:
        self._require_rds("mysql.rds_start_replication")
        return Statement("CALL mysql.rds_start_replication")

    def rds_stop_replication(self) -> Statement:
        self._require_rds("mysql.rds_stop_replication")
        return Statement("CALL mysql.rds_stop_replication")

    # -- checksums (migrate verify) ----------------------------------------------------------

    def snapshot_position(self) -> Statement | None:
        """The binary-log coordinates of the session's `START TRANSACTION WITH CONSISTENT SNAPSHOT`, exactly:
        MariaDB keeps them in the session status binlog_snapshot_file / binlog_snapshot_position. MySQL has no
        such status (performance_schema.log_status needs BACKUP_ADMIN, which RDS does not grant): None, and the
        caller reads the binary log's position after opening the snapshot, which is at or past it."""
        if self.is_mariadb:
            return Statement("SHOW STATUS LIKE 'binlog\\_snapshot\\_%'")
        return None

    @staticmethod
    def parse_snapshot_position(rows: list[dict[str, Any]]) -> BinlogPosition | None:
        values = {str(r["Variable_name"]).lower(): r["Value"] for r in rows}
        file, pos = values.get("binlog_snapshot_file"), values.get("binlog_snapshot_position")
        if not file or pos in (None, ""):
            return None  # binary logging off
        return BinlogPosition(file=str(file), pos=int(pos))

    def exact_float(self, expression: str) -> str:
        """A FLOAT value as text that tells every stored value apart. MariaDB prints a FLOAT with 6 significant
        digits (1.0000001 and 1.0000002 both print "1"); widened to DOUBLE, which both flavors print with the
        digits that read back to the same value, it is exact. MySQL before 8.0.17 has no CAST AS DOUBLE: adding
        0e0 widens it too (and turns -0 into 0)."""
        if self.is_mariadb and self.version >= (10, 4, 0) or self._mysql_at_least(8, 0, 17):
            return f"CAST({expression} AS DOUBLE)"
        return f"({expression} + 0e0)"

    def share_lock_clause(self) -> str:
        """The end of a locking read that takes shared locks and never waits for one (so it can never be part
        of a deadlock with the application's transactions): NOWAIT from MariaDB 10.3 and MySQL 8.0; before
        them, the session's innodb_lock_wait_timeout (1 s) bounds the wait."""
        if self._mariadb_at_least(10, 3):
            return "LOCK IN SHARE MODE NOWAIT"
        if self._mysql_at_least(8, 0, 1):
            return "FOR SHARE NOWAIT"
        return "LOCK IN SHARE MODE"

    def statement_time_limit(self, seconds: float) -> Statement:
        """Bound every later SELECT of the session: MariaDB's max_statement_time (seconds), MySQL's
        max_execution_time (milliseconds, SELECTs only)."""
        if seconds <= 0:
            raise ValueError(f"a time limit must be positive, got {seconds!r}")
        if self.is_mariadb:
            return Statement(f"SET SESSION max_statement_time = {_number(seconds)}")
        return Statement(f"SET SESSION max_execution_time = {math.ceil(seconds * 1000)}")

    # Errors a checksum query may meet that call for trying again, not for failing: a lock it would not wait for
    # (MariaDB 1205 for NOWAIT, MySQL 3572), a deadlock (1213), a statement over its time limit (1969, 3024).
    LOCK_BUSY_ERRORS = frozenset({1205, 1213, 3572})
    STATEMENT_TIMEOUT_ERRORS = frozenset({1969, 3024})
