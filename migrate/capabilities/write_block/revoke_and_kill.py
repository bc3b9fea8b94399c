"""`write_block: revoke_and_kill`, the RDS-friendly way: revoke the write privileges of the application
accounts, then kill their sessions (`mysql.rds_kill` on RDS) and wait until the killed sessions have left the
process list, so no write can land after the final position is taken.

The revoked grants are kept (without any password hash) so they can be given back: to the old primary
on rollback, to the new primary at promotion (on RDS the REVOKE replicated there too; elsewhere it is kept
out of the binary log, so a replica that lacks the grants never stops on it).
"""

from __future__ import annotations

import time

from migrate.adapters.db import Session
from migrate.capabilities import grants, inspector
from migrate.capabilities.inspector import Account
from migrate.capabilities.replication import binlog_off
from migrate.capabilities.switch import Server
from migrate.capabilities.write_block.base import (
    KILL_PRIVILEGES,
    WriteBlocker,
    elapsed_ms,
    kill_and_wait,
    sessions_of,
)
from migrate.errors import Refused
from migrate.runner import RunContext


def can_revoke_and_kill(privileges: set[str], *, rds: bool) -> bool:
    """Whether an account with these global privileges (grants.global_privileges) may revoke other accounts'
    grants and kill their sessions: GRANT OPTION, and off RDS (where mysql.rds_kill serves the master user)
    SUPER or CONNECTION ADMIN, which ALL PRIVILEGES includes."""
    kill = rds or bool(privileges & KILL_PRIVILEGES)
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


class RevokeAndKill(WriteBlocker):
    method = "revoke_and_kill"

    def describe(self) -> str:
        kill = "mysql.rds_kill" if self.server.rds else "KILL"
        return (f"on {self.server.name}: revoke the write privileges of {', '.join(self.users) or '(none)'}, kill "
                f"their sessions ({kill}) and wait until they are gone")

    def check(self, s: Session) -> str:
        held = inspector.accounts_of(s, self.users)
        found = revocable(s, held)  # refuses accounts holding roles
        if not found:
            raise Refused(f"no write privilege to revoke for {', '.join(str(a) for a in held) or 'no account'}: the "
                          "block would block nothing", hint="list the application's writing accounts in "
                                                            "cutover.app_users")
        if not can_revoke_and_kill(inspector.global_privileges(s), rds=self.server.rds):
            raise Refused(f"migrate's account on {self.server.name} cannot revoke and kill other accounts' sessions "
                          f"(needs GRANT OPTION{'' if self.server.rds else ' and SUPER or CONNECTION ADMIN'})",
                          hint="run migrate as the RDS master user or an administrative account")
        kill = "mysql.rds_kill" if self.server.rds else "KILL"
        return (f"revoke {sum(len(g.write_privileges()) for g in found)} write privilege(s) of {len(held)} "
                f"account(s), then {kill} their sessions")

    def block(self, s: Session, ctx: RunContext) -> str:
        held = revocable(s, inspector.accounts_of(s, self.users))
        # Saved before the first REVOKE, so a crash in the middle can still be undone; added to what an earlier
        # run of this attempt took (after its REVOKE the server no longer shows those privileges).
        taken = ctx.facts.get("revoked", [])
        taken += [item for item in ({"grant": g.as_dict(), "revoked": list(g.write_privileges())} for g in held)
                  if item not in taken]
        ctx.facts["revoked"] = taken
        ctx.save(durable=True)  # the grants to give back must outlive even a power loss; the writes still flow
        began = time.monotonic()
        revoke(s, held, log_to_binlog=self.server.rds)
        revoke_ms = elapsed_ms(began)
        ctx.checkpoint("write privileges revoked; killing the application's sessions")
        revoked = time.monotonic()
        killed = kill_and_wait(s, self.users, self.timeout_s)
        # What the rehearsal's prediction scales from: how long each part took, for how many grants and sessions.
        ctx.facts["block_timing"] = {"grants": len(held), "revoke_ms": revoke_ms, "sessions": killed,
                                     "kill_ms": elapsed_ms(revoked)}
        names = sorted({g.account for g in held})
        return (f"writes blocked on {self.server.name}: {sum(len(g.write_privileges()) for g in held)} write "
                f"privilege(s) revoked from {', '.join(names) or 'no account'}, {killed} session(s) killed and gone")

    def is_blocked(self, s: Session, facts: dict) -> bool:
        taken = facts.get("revoked")
        return taken is not None and still_revoked(s, taken) and not sessions_of(s, self.users)

    def release(self, s: Session, ctx: RunContext) -> str | None:
        taken = ctx.facts.get("revoked")
        if taken is None:
            return None
        give_back(s, taken, log_to_binlog=self.server.rds)
        return (f"write privileges given back on {self.server.name} ({len(taken)} grant(s)): the application can "
                "write there again")

    def hand_over(self, new: Session, new_server: Server, facts: dict) -> str:
        """On RDS the REVOKE replicated to the new primary too: the grants go back there (out of its binary log
        off RDS, where they never left it)."""
        taken = facts.get("revoked", [])
        give_back(new, taken, log_to_binlog=new_server.rds)
        return f"write privileges given back ({len(taken)} grant(s))"
