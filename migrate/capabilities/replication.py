"""Replication from the source to the target: the account, the configuration, the health and the lag.

Lag is never taken from Seconds_Behind_Master alone: it reads 0 while the IO thread is down (MySQL bug
82499). `Lag` carries the server's figure and how far the target's applied position is behind the
source's current one, and `true_lag_s` waits for a freshly sampled source position to be applied.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pydantic import SecretStr

from migrate import log
from migrate.adapters.db import DatabaseError, Endpoint, Session, connect
from migrate.adapters.dialect import BinlogPosition, ReplicaStatus
from migrate.capabilities import inspector
from migrate.capabilities.switch import Link
from migrate.errors import MigrateError


class ReplicationError(MigrateError):
    pass


def read_status(target: Session) -> ReplicaStatus:
    d = target.dialect
    return d.parse_replica_status(target.one(d.replica_status()), gtid=target.value(d.replica_gtid_position()))


# -- the replication account ------------------------------------------------------------------------


def user_exists(source: Session, user: str) -> bool:
    return bool(source.value("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = '%%'", (user,)))


def can_replicate(source: Session, user: str) -> bool:
    """The account exists and holds REPLICATION SLAVE (SHOW GRANTS; no password hash is kept)."""
    if not user_exists(source, user):
        return False
    lines = [next(iter(r.values())).upper() for r in source.run("SHOW GRANTS FOR %s@'%%'", (user,))]
    return any(" ON *.* " in line and ("REPLICATION SLAVE" in line or "ALL PRIVILEGES" in line) for line in lines)


def ensure_user(source: Session, user: str, password: SecretStr, where: str = "the source") -> str:
    """Create the replication account on `source` when missing, grant REPLICATION SLAVE when it lacks it (as
    the master user can on RDS); change nothing when it has both: a GRANT logged after the seed's snapshot
    would stop a replica that lacks the account (1133)."""
    d = source.dialect
    if can_replicate(source, user):  # no statement: each one is logged, and replicas lack this account
        return f"replication account '{user}'@'%' exists on {where} with REPLICATION SLAVE"
    if user_exists(source, user):
        source.run(d.grant_replication(user))
        return f"replication account '{user}'@'%' exists on {where}; REPLICATION SLAVE granted"
    source.run(d.create_user(user, password.get_secret_value()))
    source.run(d.grant_replication(user))
    return f"replication account '{user}'@'%' created on {where} with REPLICATION SLAVE"


def login_works(ep: Endpoint) -> str | None:
    """None when `ep` can log in, else the reason."""
    try:
        connect(ep, attempts=1, connect_timeout=5).close()
    except DatabaseError as exc:
        return str(exc)
    return None


# -- configuring and starting -----------------------------------------------------------------------


# RDS writes tables of its own in the mysql schema (rds_heartbeat2, rds_configuration, rds_history...) and logs
# those writes: a replica outside RDS lacks the tables and would stop with error 1146 at the first one.
SERVICE_TABLES = "mysql.rds%"


def configure(replica: Session, link: Link, position: BinlogPosition, *, keep_history: bool = False) -> str:
    """Point the (stopped) `replica` at `link`'s server from exactly `position`. Returns how.

    `keep_history`: the replica already holds everything up to `position` (an old primary that follows the
    new one): a MySQL replica's GTID history is kept, not reset to the snapshot's. On RDS through the
    mysql.rds_* procedures, elsewhere through the dialect's change-source statements."""
    d = replica.dialect
    password = link.password.get_secret_value()
    by_gtid = link.mode != "file" and bool(position.gtid_set)
    if link.mode == "gtid" and not by_gtid:
        raise ReplicationError("replication.mode is gtid but no GTID position was recorded",
                               hint="turn GTIDs on at the source, or set replication.mode: file")
    if d.rds:
        if by_gtid:
            statements = [d.set_external_source_gtid(link.host, link.port, link.user, password, ssl=link.tls,
                                                     gtid=position.gtid_set if d.is_mariadb else None)]
        else:
            statements = [d.set_external_source(link.host, link.port, link.user, password, log_file=position.file,
                                                log_pos=position.pos, ssl=link.tls)]
    else:
        replica.run(d.ignore_tables(SERVICE_TABLES))
        common = {"tls": link.tls, "ca_file": link.ca_file}
        if by_gtid and d.is_mariadb:
            statements = d.change_source(link.host, link.port, link.user, password, gtid=position.gtid_set, **common)
        elif by_gtid:
            if not keep_history:
                replica.run(d.reset_binary_logs())
                replica.run(d.set_gtid_purged(position.gtid_set))
            statements = d.change_source(link.host, link.port, link.user, password, auto_position=True, **common)
        else:
            statements = d.change_source(link.host, link.port, link.user, password, log_file=position.file,
                                         log_pos=position.pos, **common)
    for stmt in statements:
        replica.run(stmt)
    ignoring = "" if d.rds else f", ignoring {SERVICE_TABLES}"
    if by_gtid:
        return (f"MariaDB GTID from {position.gtid_set}" if d.is_mariadb else "GTID auto-position") + ignoring
    return f"file/position {position.file}:{position.pos}{ignoring}"


def start(replica: Session) -> None:
    d = replica.dialect
    replica.run(d.rds_start_replication() if d.rds else d.start_replica())


def stop(replica: Session) -> None:
    d = replica.dialect
    replica.run(d.rds_stop_replication() if d.rds else d.stop_replica())


def reset(replica: Session) -> None:
    """Forget the (stopped) replica's source entirely, connection settings included."""
    d = replica.dialect
    replica.run(d.reset_external_source() if d.rds else d.reset_replica_all())


def forget(replica: Session) -> None:
    """Stop replication and forget its source entirely, when there is one."""
    if not read_status(replica).configured:
        return
    if not replica.dialect.rds:  # RDS's reset procedure stops replication itself
        stop(replica)
    reset(replica)


@contextlib.contextmanager
def binlog_off(s: Session, *, unless: bool = False) -> Iterator[Session]:
    """This session's statements stay out of the binary log (and so off every replica), then as before.

    `unless=True` leaves logging as it is (RDS: the master user cannot turn it off)."""
    if unless:
        yield s
        return
    before = int(s.value("SELECT @@SESSION.sql_log_bin"))
    s.run(s.dialect.set_sql_log_bin(False))
    try:
        yield s
    finally:
        s.run(s.dialect.set_sql_log_bin(bool(before)))


def ensure_link_account(primary: Session, link: Link, where: str, *, log_to_binlog: bool) -> str:
    """The replication account `link` logs in with, on the primary (`where`) it replicates from; created when
    missing (out of the binary log where possible, so the replica never receives it)."""
    if can_replicate(primary, link.user):
        return f"replication account '{link.user}'@'%' already on {where}"
    with binlog_off(primary, unless=log_to_binlog):
        return ensure_user(primary, link.user, link.password, where)


def wait_running(target: Session, timeout_s: float) -> ReplicaStatus:
    """Until both threads run; otherwise stop with the server's error and a hint naming the likely cause."""
    deadline = time.monotonic() + timeout_s
    status = read_status(target)
    while time.monotonic() < deadline:
        status = read_status(target)
        if status.io_running and status.sql_running:
            return status
        if status.last_sql_errno or (status.last_io_errno and status.io_state == "stopped"):
            break
        time.sleep(0.2)
    stopped = "stopped on an error" if status.last_sql_errno or status.last_io_errno else \
        f"did not start within {timeout_s:g} s"
    raise ReplicationError(
        f"replication {stopped}: IO thread {status.io_state}, SQL thread "
        f"{'running' if status.sql_running else 'stopped'}; {status.last_error or 'no error reported'}",
        hint=hint_for(status))


def hint_for(status: ReplicaStatus) -> str:
    io, sql = status.last_io_errno, status.last_sql_errno
    if io == 1045 or (io == 1597 and "Access denied" in status.last_io_error):
        return ("the source refused the replication account: check replication.password, that it holds "
                "REPLICATION SLAVE, and that no anonymous account (''@'localhost' or ''@'%') on the source shadows it")
    if io in (2003, 2005, 2013) or status.io_state == "connecting":
        return ("the target cannot reach the source: check the source's security group allows the target's address "
                "on the MySQL port, and replication.source_host")
    if io == 1236:
        return ("the source no longer has the binary log the snapshot starts at (purged): raise binlog retention "
                "(RDS: CALL mysql.rds_set_configuration('binlog retention hours', 72)) and seed again")
    if sql in (1062, 1032):
        return ("a row the snapshot already had was applied again, or one it lacked was missing: the snapshot and "
                "its coordinates do not match; seed again")
    if sql == 1449:
        return "an account named as DEFINER is missing on the target: rerun `migrate start` to carry accounts over"
    if sql:
        return "the target could not apply an event from the source; read the error above and the target's error log"
    if status.configured and not status.sql_running:
        return ("the SQL thread was stopped without an error (STOP SLAVE or STOP REPLICA by hand?): START SLAVE "
                "SQL_THREAD on the target resumes it")
    if status.configured and status.io_state == "stopped" and not io:
        return ("the IO thread was stopped without an error (STOP SLAVE by hand?): START SLAVE IO_THREAD on the target "
                "resumes it")
    return "read the target's error log"


# -- lag --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lag:
    seconds_behind: int | None
    transactions_behind: int | None  # GTID: source's sequence minus the target's, per domain
    bytes_behind: int | None  # same binlog file: source position minus applied position
    files_behind: int | None
    source: BinlogPosition
    applied: tuple[str | None, int | None]

    @property
    def caught_up(self) -> bool:
        if self.transactions_behind is not None:
            return self.transactions_behind == 0
        return self.files_behind == 0 and self.bytes_behind == 0

    def as_dict(self) -> dict:
        return {"seconds_behind": self.seconds_behind, "transactions_behind": self.transactions_behind,
                "bytes_behind": self.bytes_behind, "files_behind": self.files_behind,
                "source_position": {"file": self.source.file, "pos": self.source.pos, "gtid": self.source.gtid_set},
                "applied_position": {"file": self.applied[0], "pos": self.applied[1]}, "caught_up": self.caught_up}


def measure_lag(source: Session, status: ReplicaStatus) -> Lag:
    src = inspector.binlog_position(source)
    files = bytes_ = None
    if status.exec_source_log_file and status.exec_source_log_pos is not None:
        files = _file_index(src.file) - _file_index(status.exec_source_log_file)
        bytes_ = src.pos - status.exec_source_log_pos if files == 0 else None
    trx = None
    if source.dialect.is_mariadb and src.gtid_set is not None:
        trx = mariadb_gtid_distance(src.gtid_set, status.executed_gtid_set or "")
    return Lag(status.seconds_behind, trx, bytes_, files, src,
               (status.exec_source_log_file, status.exec_source_log_pos))


def _file_index(name: str) -> int:
    m = re.search(r"\.(\d+)$", name or "")
    return int(m.group(1)) if m else 0


def mariadb_gtid_distance(source_pos: str, applied_pos: str) -> int:
    """Transactions the replica still has to apply: per replication domain, source seq - applied seq."""
    def parse(text: str) -> dict[int, int]:
        out = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            domain, _server, seq = part.split("-")
            out[int(domain)] = int(seq)
        return out

    src, applied = parse(source_pos), parse(applied_pos)
    return sum(max(0, seq - applied.get(domain, 0)) for domain, seq in src.items())


def wait_applied(replica: Session, position: BinlogPosition, timeout_s: float) -> str:
    """Wait until `replica` has applied `position` (by GTID when it has one): reached | timeout | not_replicating."""
    d = replica.dialect
    if position.gtid_set:
        return d.wait_outcome("gtid", replica.value(d.wait_for_gtid(position.gtid_set, timeout_s)))
    return d.wait_outcome("position", replica.value(d.wait_for_position(position.file, position.pos, timeout_s)))


def true_lag_s(source: Session, target: Session, limit_s: float) -> float | None:
    """Seconds until a position sampled on the source now is applied on the target; None past `limit_s`."""
    position = inspector.binlog_position(source)
    started = time.monotonic()
    outcome = wait_applied(target, position, limit_s)
    elapsed = time.monotonic() - started
    if outcome != "reached":
        log.get().info("position not applied in time", outcome=outcome, limit_s=limit_s)
        return None
    return elapsed
