"""Replication from the source to the target: the account, the configuration, the health and the lag.

Lag is never taken from Seconds_Behind_Master alone: it reads 0 while the IO thread is down (MySQL bug
82499). `Lag` carries the server's figure and how far the target's applied position is behind the
source's current one, and `true_lag_s` waits for a freshly sampled source position to be applied.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from pydantic import SecretStr

from migrate import log
from migrate.adapters.db import DatabaseError, Endpoint, Session, connect
from migrate.adapters.dialect import BinlogPosition, ReplicaStatus
from migrate.capabilities import inspector
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


def ensure_user(source: Session, user: str, password: SecretStr) -> str:
    """Create the replication account on the source when missing (as the master user can on RDS)."""
    d = source.dialect
    if user_exists(source, user):
        source.run(d.grant_replication(user))
        return f"replication account '{user}'@'%' exists on the source; REPLICATION SLAVE granted"
    source.run("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password.get_secret_value()))
    source.run(d.grant_replication(user))
    return f"replication account '{user}'@'%' created on the source with REPLICATION SLAVE"


def login_works(ep: Endpoint) -> str | None:
    """None when `ep` can log in, else the reason."""
    try:
        connect(ep, attempts=1, connect_timeout=5).close()
    except DatabaseError as exc:
        return str(exc)
    return None


# -- configuring and starting -----------------------------------------------------------------------


def configure(target: Session, *, host: str, port: int, user: str, password: SecretStr, position: BinlogPosition,
              mode: str, tls: bool, ca_file: str | None) -> str:
    """Point the (stopped) target at the source from exactly `position`. Returns how."""
    d = target.dialect
    common = {"tls": tls, "ca_file": ca_file}
    if d.is_mariadb and mode != "file" and position.gtid_set:
        statements = d.change_source(host, port, user, password.get_secret_value(), gtid=position.gtid_set, **common)
        how = f"MariaDB GTID from {position.gtid_set}"
    elif not d.is_mariadb and mode != "file" and position.gtid_set:
        target.run(d.reset_binary_logs())
        target.run(d.set_gtid_purged(position.gtid_set))
        statements = d.change_source(host, port, user, password.get_secret_value(), auto_position=True, **common)
        how = "GTID auto-position"
    else:
        if mode == "gtid":
            raise ReplicationError("replication.mode is gtid but the snapshot recorded no GTID position",
                                   hint="turn GTIDs on at the source, or set replication.mode: file")
        statements = d.change_source(host, port, user, password.get_secret_value(), log_file=position.file,
                                     log_pos=position.pos, **common)
        how = f"file/position {position.file}:{position.pos}"
    for stmt in statements:
        target.run(stmt)
    return how


def stop_and_forget(target: Session) -> None:
    d = target.dialect
    if read_status(target).configured:
        target.run(d.stop_replica())
        target.run(d.reset_replica_all())


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


def true_lag_s(source: Session, target: Session, limit_s: float) -> float | None:
    """Seconds until a position sampled on the source now is applied on the target; None past `limit_s`."""
    d = target.dialect
    position = inspector.binlog_position(source)
    started = time.monotonic()
    if position.gtid_set:
        outcome = d.wait_outcome("gtid", target.value(d.wait_for_gtid(position.gtid_set, limit_s)))
    else:
        outcome = d.wait_outcome("position", target.value(d.wait_for_position(position.file, position.pos, limit_s)))
    elapsed = time.monotonic() - started
    if outcome != "reached":
        log.get().info("position not applied in time", outcome=outcome, limit_s=limit_s)
        return None
    return elapsed
