"""Blocking the application's writes on the source, the RDS-friendly way: revoke the write privileges of
the application accounts, then kill their sessions (`mysql.rds_kill` on RDS) and wait until the killed
sessions have left the process list, so no write can land after the final position is taken.

The revoked grants are kept (without any password hash) so they can be given back: to the old primary
on rollback, to the new primary at promotion (on RDS the REVOKE replicated there too; elsewhere it is kept
out of the binary log, so a replica that lacks the grants never stops on it).
"""

from __future__ import annotations

import time

from migrate.adapters.db import DatabaseError, Session
from migrate.capabilities import grants
from migrate.capabilities.inspector import Account
from migrate.capabilities.replication import binlog_off
from migrate.errors import Refused, StepFailed


def can_revoke_and_kill(privileges: set[str], *, rds: bool) -> bool:
    """Whether an account with these global privileges (grants.global_privileges) may revoke other accounts'
    grants and kill their sessions: GRANT OPTION, and off RDS (where mysql.rds_kill serves the master user)
    SUPER or CONNECTION ADMIN, which ALL PRIVILEGES includes."""
    kill = rds or bool(privileges & {"SUPER", "CONNECTION ADMIN", "ALL PRIVILEGES"})
    return "GRANT OPTION" in privileges and kill


def revocable(s: Session, accounts: list[Account]) -> list[grants.Grant]:
    """The grants of `accounts` that hold write privileges. Refuses role grants (REVOKE cannot reach them)."""
    found = []
    for account in accounts:
        for row in s.run(f"SHOW GRANTS FOR {account.sql()}"):
            line = grants.without_credentials(next(iter(row.values())))
            try:
                grant = grants.parse(line)
            except grants.RoleGrantFound as exc:
                raise Refused(f"{account} holds a role ({exc}): revoking the account's own grants would not block "
                              "its writes", hint="grant the role's privileges to the account directly, or use "
                                                 "write_block: read_only") from None
            if grant and grant.write_privileges():
                found.append(grant)
    return found


def revoke(s: Session, held: list[grants.Grant], *, log_to_binlog: bool) -> list[dict]:
    """REVOKE the write privileges; returns what was taken, for `give_back`."""
    taken = []
    with binlog_off(s, unless=log_to_binlog):
        for grant in held:
            privileges = grant.write_privileges()
            s.run(grant.revoke_sql(privileges))
            if grant.is_all:  # keep the application able to read while it waits
                s.run(grant.sql(("SELECT",)))
            taken.append({"grant": grant.as_dict(), "revoked": list(privileges)})
    return taken


def give_back(s: Session, taken: list[dict], *, log_to_binlog: bool) -> int:
    with binlog_off(s, unless=log_to_binlog):
        for item in taken:
            grant = grants.Grant.from_dict(item["grant"])
            s.run(grant.sql(tuple(item["revoked"])))
    return len(taken)


def still_revoked(s: Session, taken: list[dict]) -> bool:
    """True while none of the taken write privileges is back (checked on the server)."""
    accounts = {item["grant"]["account"] for item in taken}
    current = set()
    for account in accounts:
        for row in s.run(f"SHOW GRANTS FOR {account}"):
            grant = grants.parse(grants.without_credentials(next(iter(row.values()))))
            if grant:
                current |= {(grant.on, p) for p in grant.write_privileges()}
    return not any((item["grant"]["on"], p) in current for item in taken for p in item["revoked"])


def sessions_of(s: Session, users: list[str], *, exclude: set[int] = frozenset()) -> list[int]:
    if not users:
        return []
    rows = s.run("SELECT id FROM information_schema.processlist WHERE user IN (" + ", ".join(["%s"] * len(users))
                 + ")", tuple(users))
    return [r["id"] for r in rows if r["id"] not in exclude and r["id"] != s.connection_id]


def _kill(s: Session, ids: list[int]) -> None:
    for connection_id in ids:
        try:
            s.run(s.dialect.kill(connection_id))
        except DatabaseError as exc:
            if exc.code not in (1094,):  # 1094: unknown thread id: it ended by itself
                raise


def kill_and_wait(s: Session, users: list[str], timeout_s: float) -> int:
    """Kill every session of `users`, then wait until they are gone: KILL returns before the session is.
    (Killing from several sessions at once was measured slower under load: the extra connects cost more.)"""
    ids = sessions_of(s, users)
    _kill(s, ids)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = set(sessions_of(s, users)) & set(ids)
        if not left:
            return len(ids)
        time.sleep(0.002)  # the application waits for this: poll often, it is one cheap query
    raise StepFailed(f"{len(left)} killed application session(s) still in the process list after {timeout_s:g} s "
                     f"(ids {sorted(left)[:10]})", hint="a long rollback may be running; retry the cutover later")
