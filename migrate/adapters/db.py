"""pymysql sessions: connect with timeouts, run statements, quote identifiers, pick the dialect.

Statements carry their parameters separately (pymysql escapes them client-side), so a password in a
CHANGE MASTER never appears in a log line: only `Statement.sql`, with its placeholders, is logged.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass, field, replace
from typing import Any

import pymysql
import pymysql.cursors
from pydantic import SecretStr
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from migrate import log
from migrate.errors import MigrateError


class DatabaseError(MigrateError):
    def __init__(self, message: str, *, code: int | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code


@dataclass(frozen=True)
class Statement:
    """One SQL statement and its parameters, kept apart so the parameters never reach a log."""

    sql: str
    params: tuple[Any, ...] = ()
    secret_params: frozenset[int] = field(default_factory=frozenset)
    hidden: bool = False  # the text itself carries credentials (a CREATE USER with a password hash)

    def shown(self) -> str:
        """The statement as a human may see it: secret parameters replaced by ***."""
        if self.hidden:
            return self.sql.split(" ", 2)[0] + " ... (hidden: carries credentials)"
        if not self.params:
            return self.sql
        shown = tuple("'***'" if i in self.secret_params else pymysql.converters.escape_item(p, "utf8mb4")
                      for i, p in enumerate(self.params))
        return self.sql % shown


def quote_ident(name: str) -> str:
    """Quote a schema, table, column or account name part for MySQL: `na``me`."""
    if "\x00" in name:
        raise ValueError("identifier contains a NUL byte")
    return "`" + name.replace("`", "``") + "`"


def quote_account(user: str, host: str = "%") -> str:
    return f"{quote_string(user)}@{quote_string(host)}"


def quote_string(value: str) -> str:
    return "'" + pymysql.converters.escape_string(value) + "'"


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect. `password` is a SecretStr: printing an Endpoint shows ***."""

    host: str
    port: int
    user: str
    password: SecretStr
    tls: str = "disabled"  # required | preferred | disabled
    ca_file: str | None = None
    unix_socket: str | None = None
    label: str = "server"  # "source", "target", ... for messages
    rds: bool = False  # an RDS instance: the dialect then uses the mysql.rds_* procedures

    def describe(self) -> str:
        where = self.unix_socket or f"{self.host}:{self.port}"
        return f"{self.label} {self.user}@{where}"


def _ssl_arg(ep: Endpoint) -> dict[str, Any]:
    """TLS as the endpoint says. `disabled` must be said to the driver: PyMySQL otherwise tries TLS whenever the
    server offers it (and loads the system's CA bundle, ~50 ms, on every connect)."""
    if ep.tls == "disabled" or ep.unix_socket:
        return {"ssl_disabled": True}
    ctx = ssl.create_default_context(cafile=ep.ca_file) if ep.ca_file else ssl.create_default_context()
    if ep.tls == "preferred":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return {"ssl": ctx}


def _transient(exc: BaseException) -> bool:
    # 2003: can't connect, 2013: lost connection during handshake. Safe to repeat: nothing was done.
    return isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] in (2003, 2013)


def connect(ep: Endpoint, *, connect_timeout: float = 10, read_timeout: float | None = 60,
            attempts: int = 3, database: str | None = None, bound_handshake: bool = False,
            read_only: bool = False) -> Session:
    """Open a session. Connection attempts (and only those) are retried: a failed connect changed nothing.

    `bound_handshake`: the MySQL handshake too must finish within `connect_timeout`. Behind a proxy the TCP
    connect succeeds at once even when the database is gone, and the handshake would otherwise wait for
    `read_timeout`.
    """
    handshake_timeout = connect_timeout if bound_handshake else read_timeout

    def _log_retry(state: Any) -> None:
        log.get().warning("connect failed, retrying", server=ep.describe(), attempt=state.attempt_number,
                          reason=str(state.outcome.exception()))

    @retry(retry=retry_if_exception(_transient), stop=stop_after_attempt(attempts),
           wait=wait_exponential(multiplier=0.2, max=2), before_sleep=_log_retry, reraise=True)
    def _open() -> pymysql.connections.Connection:
        return pymysql.connect(
            host=ep.host, port=ep.port, user=ep.user, password=ep.password.get_secret_value(),
            unix_socket=ep.unix_socket, database=database, connect_timeout=connect_timeout,
            read_timeout=handshake_timeout, write_timeout=handshake_timeout, autocommit=True, charset="utf8mb4",
            cursorclass=pymysql.cursors.DictCursor, **_ssl_arg(ep),
        )

    try:
        conn = _open()
    except pymysql.err.MySQLError as exc:
        if _refused_for_clear_text(exc, ep, connect_timeout):
            raise DatabaseError(
                f"{ep.describe()}: connect refused without TLS: the server accepts this account only over TLS "
                "(REQUIRE SSL on the account, or require_secure_transport=ON)", code=1045,
                hint=f"set tls.mode: required (and tls.ca_file) for {ep.label} in the playbook") from None
        raise _translate(exc, ep, "connect") from None
    if bound_handshake:  # pymysql reads these per operation; it has no public setter
        conn._read_timeout = conn._write_timeout = read_timeout
    return Session(conn, ep, read_only=read_only)


def _refused_for_clear_text(exc: pymysql.err.MySQLError, ep: Endpoint, timeout: float) -> bool:
    """A clear-text login refused with 1045 that TLS would let in: MariaDB answers "access denied" both to a
    wrong password and to an account that requires TLS, so one login over TLS (not verified, nothing read)
    tells them apart."""
    if not (exc.args and exc.args[0] == 1045 and ep.tls == "disabled" and not ep.unix_socket):
        return False
    try:
        pymysql.connect(host=ep.host, port=ep.port, user=ep.user, password=ep.password.get_secret_value(),
                        connect_timeout=timeout, ssl=_ssl_arg(replace(ep, tls="preferred"))["ssl"]).close()
    except (pymysql.err.MySQLError, OSError):
        return False
    return True


def _translate(exc: pymysql.err.MySQLError, ep: Endpoint, doing: str) -> DatabaseError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = log.redact(str(exc.args[1]) if len(exc.args) > 1 else str(exc))
    hint = None
    if code == 1045:
        hint = (f"check the password of {ep.user} and that no anonymous account (''@'localhost') "
                "shadows it on that server")
    elif code == 2003:
        hint = f"check that {ep.host}:{ep.port} is up and reachable from here (security group, firewall)"
    return DatabaseError(f"{ep.describe()}: {doing} failed: ({code}) {text}", code=code, hint=hint)


class ReadOnlyViolation(MigrateError):
    """A read-only session was asked to change something: a bug, never a user error."""


_READ_VERBS = ("SELECT", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "CALL MYSQL.RDS_SHOW_CONFIGURATION")


def _reads_only(sql: str) -> bool:
    head = " ".join(sql.split()).upper()
    return head.startswith(_READ_VERBS) and " INTO " not in head.split(" FROM ")[0] + " " and ";" not in sql


class Session:
    """One connection. Every statement goes through `run`, which logs the statement without secrets."""

    def __init__(self, conn: pymysql.connections.Connection, ep: Endpoint, *, read_only: bool = False):
        self.conn = conn
        self.endpoint = ep
        self.read_only = read_only  # `migrate plan`'s sessions: anything but reading is refused here
        self._dialect: Any = None

    def run(self, stmt: Statement | str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        if isinstance(stmt, str):
            stmt = Statement(stmt, params)
        if self.read_only and not _reads_only(stmt.sql):
            raise ReadOnlyViolation(f"refused on a read-only session: `{stmt.shown()[:120]}`")
        try:
            with self.conn.cursor() as cur:
                cur.execute(stmt.sql, stmt.params or None)
                rows = list(cur.fetchall()) if cur.description else []
                while cur.nextset():  # CALLs return an extra result; drain it so the session stays usable
                    pass
                return rows
        except pymysql.err.MySQLError as exc:
            raise _translate(exc, self.endpoint, f"`{stmt.shown()[:200]}`") from None

    def run_many(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        """One INSERT for many rows (pymysql folds them into multi-row VALUES)."""
        try:
            with self.conn.cursor() as cur:
                return cur.executemany(sql, rows) or 0
        except pymysql.err.MySQLError as exc:
            raise _translate(exc, self.endpoint, f"`{sql[:200]}` x{len(rows)}") from None

    def one(self, stmt: Statement | str, params: tuple[Any, ...] = ()) -> dict[str, Any] | None:
        rows = self.run(stmt, params)
        return rows[0] if rows else None

    def value(self, stmt: Statement | str, params: tuple[Any, ...] = ()) -> Any:
        row = self.one(stmt, params)
        return None if row is None else next(iter(row.values()))

    def variable(self, name: str) -> Any:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a variable name: {name}")
        return self.value(f"SELECT @@GLOBAL.{name} AS v")

    @property
    def connection_id(self) -> int:
        return self.conn.thread_id()

    @property
    def dialect(self) -> Any:
        if self._dialect is None:
            from migrate.adapters.dialect import detect

            row = self.one("SELECT VERSION() AS version, @@version_comment AS comment")
            self._dialect = detect(row["version"], row["comment"] or "", rds=self.endpoint.rds)
        return self._dialect

    def close(self) -> None:
        """Close the session. A statement still waiting on it in another thread (a step cancelled on a silent
        link) returns at once: closing alone would leave it blocked until its read timeout. Shutting down the
        reading side wakes it and still lets the server receive QUIT."""
        sock = getattr(self.conn, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)
        with contextlib.suppress(Exception):  # closing a dead connection is not worth reporting
            self.conn.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
