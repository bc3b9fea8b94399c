"""Carries accounts and their grants from the source to the target.

A dump carries triggers, routines and views but not the accounts named in their DEFINER: without those
accounts every CALL and every trigger fails with 1449 on the target. The statements carry password
hashes, so they run hidden (never logged, never in an error message) and without binary logging.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate import log
from migrate.adapters.db import DatabaseError, Session, Statement, quote_ident
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
class Selection:
    """What `start` carries: roles (created first) and accounts, and what it leaves, each with why."""

    roles: list[Account] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"account", "why"}

    @property
    def all(self) -> list[Account]:
        return [*self.roles, *self.accounts]


def _skip_reason(a: Account, *, own: set[str], skip: list[str]) -> str | None:
    if a.user in SERVICE_ACCOUNTS or a.user.startswith(("mysql.", "mariadb.")):
        return "the managed service's or the server's own account"
    if a.user == "" or (a.user == "PUBLIC" and a.host == ""):
        return "anonymous or built-in"
    if a.user in own:
        return "migrate's own (replication link, or the account it administers the target with)"
    if a.user in skip or f"{a.user}@{a.host}" in skip:
        return "listed in seed.skip_accounts"
    return None


def select(s: Session, *, mode: str, required: list[Account], own: set[str], skip: list[str]) -> Selection:
    """`required` (the application's, the probe's, the DEFINERs) always; with mode "all" every other account and
    role of the source too, minus the service's, migrate's own (`own`: user names) and `skip`."""
    chosen = Selection()
    rows = s.run(s.dialect.accounts())
    roles = {Account(r["user"], r["host"]) for r in rows if int(r["is_role"] or 0)}
    every = [Account(r["user"], r["host"]) for r in rows] if mode == "all" else []
    for account in dict.fromkeys([*every, *sorted(required, key=lambda a: (a.user, a.host))]):
        why = _skip_reason(account, own=own, skip=skip)
        if why:
            chosen.skipped.append({"account": str(account), "why": why})
        else:
            (chosen.roles if account in roles else chosen.accounts).append(account)
    return chosen


@dataclass
class CarryResult:
    carried: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)  # {"account", "why"}
    unapplied: list[str] = field(default_factory=list)  # grant lines the target refused (named in `skipped`)

    def as_dict(self) -> dict:
        return {"carried": self.carried, "skipped": self.skipped, "unapplied": self.unapplied}


def _role_sql(role: Account) -> str:
    return quote_ident(role.user) if role.host == "" else role.sql()


def carry(source: Session, target: Session, chosen: Selection) -> CarryResult:
    """Recreate each role, then each account, on the target (dropped first if there) with its authentication
    (the hash, never a password), TLS requirements, limits and every grant, binlog off."""
    result = CarryResult(skipped=list(chosen.skipped))
    target.run(target.dialect.set_sql_log_bin(False))
    try:
        for account in chosen.all:
            is_mariadb_role = account in chosen.roles and account.host == "" and target.dialect.is_mariadb
            try:
                create = f"CREATE ROLE {_role_sql(account)}" if is_mariadb_role else \
                    next(iter(source.one(f"SHOW CREATE USER {account.sql()}").values()))
                lines = grant_lines(source, account)
            except DatabaseError as exc:
                result.skipped.append({"account": str(account), "why": f"not readable on the source ({exc.code})"})
                continue
            target.run(f"DROP ROLE IF EXISTS {_role_sql(account)}" if is_mariadb_role else
                       f"DROP USER IF EXISTS {account.sql()}")
            target.run(Statement(create, hidden=True))
            refused = _apply_grants(target, lines)
            result.carried.append(str(account))
            for line, code in refused:
                result.unapplied.append(line)
                result.skipped.append({"account": str(account),
                                       "why": f"grant not applied ({code}): {line.split(' TO ')[0][:120]}"})
    finally:
        target.run(target.dialect.set_sql_log_bin(True))
    log.get().info("accounts carried", carried=len(result.carried), skipped=len(result.skipped))
    return result


def grant_lines(s: Session, account: Account) -> list[str]:
    return [next(iter(r.values())) for r in s.run(f"SHOW GRANTS FOR {_role_sql(account)}")]


def differences(source: Session, target: Session, chosen: Selection, unapplied: list[str] = ()) -> list[str]:
    """The selected accounts missing on the target, or whose grants differ there (credentials left out; the
    lines the target refused when they were carried, `unapplied`, are not counted again)."""
    out = []
    for account in chosen.all:
        try:
            theirs = {grants.comparable(line) for line in grant_lines(target, account)}
        except DatabaseError:
            out.append(f"{account} missing")
            continue
        ours = {grants.comparable(line) for line in grant_lines(source, account)} - \
            {grants.comparable(line) for line in unapplied}
        if ours != theirs:
            out.append(f"{account} grants differ")
    return out


def _apply_grants(target: Session, lines: list[str]) -> list[tuple[str, int | None]]:
    """Each grant line on the target; returns the ones it refused, with the server's error code."""
    refused = []
    for line in lines:
        clean = grants.without_credentials(line)
        if clean.startswith("GRANT USAGE ON *.*") and " WITH " not in clean:
            continue  # nothing to grant: the account itself was created above
        try:
            target.run(Statement(clean, hidden=True))
        except DatabaseError as exc:
            refused.append((clean, exc.code))
    return refused


def exists(session: Session, account: Account) -> bool:
    return bool(session.value("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = %s",
                              (account.user, account.host)))
