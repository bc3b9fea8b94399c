"""`write_block: read_only`, the recipe's own block on a self-managed server: `SET GLOBAL read_only = ON` (and
`super_read_only` on MySQL), then kill the application's sessions and wait until they are gone.

`SET GLOBAL read_only` waits for the commits in flight (it takes the global read lock for a moment) and can hang
behind a long one (orchestrator #1127): it runs under the session's lock_wait_timeout, set to the block's own
timeout, so it fails instead of holding the application's writes. RDS's master user cannot set it: there the
parameter group does (`parameter_group`).
"""

from __future__ import annotations

import math
import time

from migrate.adapters.db import DatabaseError, Session
from migrate.capabilities import grants, inspector
from migrate.capabilities.write_block.base import (
    KILL_PRIVILEGES,
    WriteBlocker,
    elapsed_ms,
    kill_and_wait,
    sessions_of,
    set_read_only,
)
from migrate.errors import Refused, StepFailed
from migrate.runner import RunContext

LOCK_WAIT_TIMEOUT = 1205


class ReadOnly(WriteBlocker):
    method = "read_only"

    def describe(self) -> str:
        return (f"on {self.server.name}: SET GLOBAL read_only = ON (waiting at most {self.timeout_s:g} s for the "
                f"commits in flight), then KILL the sessions of {', '.join(self.users) or '(none)'} and wait until "
                "they are gone")

    def check(self, s: Session) -> str:
        if self.server.rds:
            raise Refused(f"{self.server.name} is RDS: its master user cannot SET GLOBAL read_only",
                          hint="use cutover.write_block: parameter_group (read_only in the instance's parameter "
                               "group) or revoke_and_kill")
        mine = inspector.global_privileges(s)
        setters = s.dialect.read_only_setters()
        if not (mine & setters and mine & KILL_PRIVILEGES):
            raise Refused(f"migrate's account on {self.server.name} cannot set read_only and kill other accounts' "
                          f"sessions (needs one of {', '.join(sorted(setters))}, and SUPER or CONNECTION ADMIN)",
                          hint=f"grant them to {self.server.name}'s user, or run migrate as an administrative "
                               "account")
        bypass = [str(a) for a in inspector.accounts_of(s, self.users)
                  if grants.global_privileges(inspector.login_grants(s, a)) & s.dialect.read_only_bypassers()]
        if bypass:
            raise Refused(f"{', '.join(bypass)} may write while read_only is ON ("
                          f"{' or '.join(sorted(s.dialect.read_only_bypassers()))}): read_only would not block them",
                          hint="revoke that privilege from the application's accounts, or use write_block: "
                               "revoke_and_kill")
        now = "ON already" if s.variable("read_only") else "OFF now"
        return f"SET GLOBAL read_only = ON (it is {now}), then KILL the sessions of {', '.join(self.users)}"

    def block(self, s: Session, ctx: RunContext) -> str:
        ctx.facts.setdefault("read_only_before", bool(s.variable("read_only")))
        ctx.save(durable=True)  # what release puts back, before the server changes
        began = time.monotonic()
        self._set(s, True)
        set_ms = elapsed_ms(began)
        ctx.checkpoint("read_only ON; killing the application's sessions")
        killed_at = time.monotonic()
        killed = kill_and_wait(s, self.users, self.timeout_s)
        ctx.facts["block_timing"] = {"read_only_ms": set_ms, "sessions": killed, "kill_ms": elapsed_ms(killed_at)}
        return (f"writes blocked on {self.server.name}: read_only ON in {set_ms:.0f} ms, {killed} session(s) of "
                f"{', '.join(self.users)} killed and gone")

    def _set(self, s: Session, on: bool) -> None:
        previous = s.value("SELECT @@session.lock_wait_timeout")
        s.run(f"SET SESSION lock_wait_timeout = {max(1, math.ceil(self.timeout_s))}")
        try:
            for stmt in s.dialect.set_read_only(on):
                s.run(stmt)
        except DatabaseError as exc:
            if exc.code != LOCK_WAIT_TIMEOUT:
                raise
            raise StepFailed(f"SET GLOBAL read_only = ON on {self.server.name} waited {self.timeout_s:g} s for the "
                             "commits in flight and gave up (a long transaction or a table lock holds it)",
                             hint="find the long transaction (information_schema.innodb_trx, SHOW PROCESSLIST) "
                                  "and let it end, then retry the cutover") from None
        finally:
            s.run(f"SET SESSION lock_wait_timeout = {int(previous)}")

    def is_blocked(self, s: Session, facts: dict) -> bool:
        return "read_only_before" in facts and bool(s.variable("read_only")) and not sessions_of(s, self.users)

    def release(self, s: Session, ctx: RunContext) -> str | None:
        if "read_only_before" not in ctx.facts:
            return None
        if ctx.facts["read_only_before"]:
            return f"{self.server.name} was read_only before the block; left so"
        set_read_only(s, False)
        return f"read_only OFF again on {self.server.name}: the application can write there again"
