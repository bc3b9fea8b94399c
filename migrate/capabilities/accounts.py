"""Carries accounts and their grants from the source to the target.

A dump carries triggers, routines and views but not the accounts named in their DEFINER: without those
accounts every CALL and every trigger fails with 1449 on the target. The statements carry password
hashes, so they run hidden (never logged, never in an error message) and without binary logging.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate import log
from migrate.adapters.db import DatabaseError, Session, Statement
from migrate.capabilities import grants, inspector
from migrate.capabilities.inspector import SERVICE_ACCOUNTS, Account
from migrate.errors import Refused


def named(s: Session, users: list[str], *, what: str, where: str, fix: str) -> list[Account]:
    """The accounts of `users` on `s`; refused, naming the missing ones (`what` says which they are), when any
    does not exist there."""
    found = inspector.accounts_of(s, users)
    missing = sorted(set(users) - {a.user for a in found})
    if missing:
        raise Refused(f"{what} {', '.join(missing)} do(es) not exist on {where}", hint=fix)
    return found


@dataclass
class CarryResult:
    carried: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"account", "why"}

    def as_dict(self) -> dict:
        return {"carried": self.carried, "skipped": self.skipped}


def carry(source: Session, target: Session, accounts: list[Account]) -> CarryResult:
    """Recreate each account on the target (dropped first if there) with its grants, binlog off."""
    result = CarryResult()
    target.run(target.dialect.set_sql_log_bin(False))
    try:
        for account in accounts:
            if account.user in SERVICE_ACCOUNTS:
                result.skipped.append({"account": str(account), "why": "the managed service's own account"})
                continue
            try:
                create = next(iter(source.one(f"SHOW CREATE USER {account.sql()}").values()))
                lines = [next(iter(r.values())) for r in source.run(f"SHOW GRANTS FOR {account.sql()}")]
            except DatabaseError as exc:
                result.skipped.append({"account": str(account), "why": f"not readable on the source ({exc.code})"})
                continue
            target.run(f"DROP USER IF EXISTS {account.sql()}")
            target.run(Statement(create, hidden=True))
            problems = _apply_grants(target, lines)
            result.carried.append(str(account))
            for problem in problems:
                result.skipped.append({"account": str(account), "why": problem})
    finally:
        target.run(target.dialect.set_sql_log_bin(True))
    log.get().info("accounts carried", carried=len(result.carried), skipped=len(result.skipped))
    return result


def _apply_grants(target: Session, lines: list[str]) -> list[str]:
    problems = []
    for line in lines:
        clean = grants.without_credentials(line)
        if clean.startswith("GRANT USAGE ON *.*") and " WITH " not in clean:
            continue  # nothing to grant: the account itself was created above
        try:
            target.run(Statement(clean, hidden=True))
        except DatabaseError as exc:
            problems.append(f"grant not applied ({exc.code}): {clean.split(' TO ')[0][:120]}")
    return problems


def exists(session: Session, account: Account) -> bool:
    return bool(session.value("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = %s",
                              (account.user, account.host)))
