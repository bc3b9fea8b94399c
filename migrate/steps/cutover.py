"""The cutover, as data: an ordered list of steps, each with its own timeout and rollback.

gates -> block_writes -> final_position -> promote -> repoint (the point of no return) -> post_check.
Any failure before the repoint is done rolls back: the application's grants back on the source, the
target replicating again and read-only, the endpoint on the source.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from migrate.adapters.db import Endpoint, Session, connect, quote_ident
from migrate.adapters.dialect import BinlogPosition
from migrate.capabilities import accounts, events, hooks, inspector, replication, write_block
from migrate.capabilities.inspector import TOOL_SCHEMA
from migrate.capabilities.repoint.base import Repointer
from migrate.errors import Refused, StepFailed
from migrate.runner import RunContext, Step
from migrate.steps.start import MigrationStep, app_accounts
from migrate.workflows.context import Migration

GATE_GRACE_S = 60.0
SAMPLE_EVERY_S = 0.25


def _cut(ctx: RunContext) -> dict:
    return ctx.data.setdefault("cutover", {})


class Gates(MigrationStep):
    """Checked before anything changes: replication healthy, caught up within max_lag_s, continuously."""

    name = "gates"
    changes_nothing = True

    def __init__(self, m: Migration):
        super().__init__(m)
        self.timeout_s = m.pb.cutover.stable_for_s + GATE_GRACE_S + 15

    def describe(self) -> str:
        c = self.m.pb.cutover
        return (f"check, changing nothing: replication healthy and every position sampled on the source applied "
                f"on the target within {c.max_lag_s:g} s, continuously for {c.stable_for_s:g} s")

    def done(self, ctx: RunContext) -> bool:
        return False  # taken fresh on every run: a gate passed an hour ago says nothing now

    def run(self, ctx: RunContext) -> str:
        c = self.m.pb.cutover
        ctx.on_cancel(self.m.close)
        s, t = self.m.shared("source"), self.m.shared("target")  # kept open for the steps after
        self._static_checks(s, t)
        deadline = time.monotonic() + c.stable_for_s + GATE_GRACE_S
        stable_since, worst, samples = None, 0.0, 0
        while True:
            status = replication.read_status(t)
            if not status.healthy:
                raise Refused(f"replication is not healthy: IO {status.io_state}, SQL "
                              f"{'running' if status.sql_running else 'stopped'}; {status.last_error or ''}",
                              hint=replication.hint_for(status))
            lag = replication.true_lag_s(s, t, c.max_lag_s)
            now = time.monotonic()
            samples += 1
            if lag is None or (status.seconds_behind or 0) > c.max_lag_s:
                stable_since, worst = None, 0.0
            else:
                stable_since = stable_since or now
                worst = max(worst, lag)
            if stable_since is not None and now - stable_since >= c.stable_for_s:
                return (f"replication healthy and caught up: {samples} positions sampled on the source, each "
                        f"applied on the target within {worst * 1000:.0f} ms over {c.stable_for_s:g} s")
            if now > deadline:
                raise Refused(f"the target did not stay within {c.max_lag_s:g} s of the source for "
                              f"{c.stable_for_s:g} s (last lag: "
                              f"{'over ' + format(c.max_lag_s, 'g') + ' s' if lag is None else f'{lag:.2f} s'})",
                              hint="wait for the replica to catch up (migrate status), or cut over when the "
                                   "write load is lower")
            ctx.progress("waiting for a stable replica", every_s=5)
            time.sleep(SAMPLE_EVERY_S)

    def _static_checks(self, s: Session, t: Session) -> None:
        missing = [str(a) for a in app_accounts(s, self.m) if not accounts.exists(t, a)]
        if missing:
            raise Refused(f"application account(s) {', '.join(missing)} do not exist on the target",
                          hint="rerun `migrate start` to carry them over")
        if not t.variable("read_only"):
            raise Refused("the target is writable while it replicates: something may have written to it",
                          hint="set read_only=ON on the target, verify it, then retry")


class BeforeCutoverHook(MigrationStep):
    name = "hook_before_cutover"
    changes_nothing = True  # as far as migrate knows: the hook is the user's
    timeout_s = hooks.HOOK_TIMEOUT_S + 10

    def describe(self) -> str:
        return f"run the before_cutover hook `{self.m.pb.hooks.before_cutover}`; a failure stops here, nothing changed"

    def done(self, ctx: RunContext) -> bool:
        return False

    def run(self, ctx: RunContext) -> str:
        hooks.run(self.m, "before_cutover", fatal=True)
        return "before_cutover hook ran and said go"


class BlockWrites(MigrationStep):
    name = "block_writes"

    def __init__(self, m: Migration):
        super().__init__(m)
        self.timeout_s = m.pb.cutover.timeout_s + 10

    def describe(self) -> str:
        users = ", ".join(self.m.pb.cutover.app_users) or "(none)"
        return (f"on the source: revoke the write privileges of {users}, kill their sessions "
                f"({'mysql.rds_kill' if self.m.pb.source.kind == 'rds' else 'KILL'}) and wait until they are gone")

    def done(self, ctx: RunContext) -> bool:
        taken = _cut(ctx).get("revoked")
        if not taken:
            return False
        with self.m.source() as s:
            return write_block.still_revoked(s, taken) and not write_block.sessions_of(s, self.m.pb.cutover.app_users)

    def run(self, ctx: RunContext) -> str:
        if self.m.pb.cutover.write_block != "revoke_and_kill":
            raise Refused(f"write_block: {self.m.pb.cutover.write_block} is not built yet",
                          hint="use write_block: revoke_and_kill")
        ctx.on_cancel(self.m.close)
        s = self.m.shared("source")
        held = write_block.revocable(s, app_accounts(s, self.m))
        # Saved before the first REVOKE: a crash in the middle can still be rolled back.
        _cut(ctx)["revoked"] = [{"grant": g.as_dict(), "revoked": list(g.write_privileges())} for g in held]
        ctx.save()
        write_block.revoke(s, held)
        killed = write_block.kill_and_wait(s, self.m.pb.cutover.app_users, self.m.pb.cutover.timeout_s)
        _cut(ctx)["blocked_at"] = time.time()
        accounts_ = sorted({g.account for g in held})
        return (f"writes blocked: {sum(len(g.write_privileges()) for g in held)} write privilege(s) revoked from "
                f"{', '.join(accounts_) or 'no account'}, {killed} session(s) killed and gone")

    def rollback(self, ctx: RunContext) -> str | None:
        taken = _cut(ctx).get("revoked")
        if not taken:
            return None
        with self.m.source() as s:
            write_block.give_back(s, taken)
        return f"write privileges given back on the source ({len(taken)} grant(s)): the application can write again"


class FinalPosition(MigrationStep):
    name = "final_position"

    def __init__(self, m: Migration):
        super().__init__(m)
        self.timeout_s = m.pb.cutover.timeout_s + 10

    def describe(self) -> str:
        return (f"read the source's final binary-log position and wait, at most {self.m.pb.cutover.timeout_s:g} s, "
                "until the target has applied it")

    def rollback(self, ctx: RunContext) -> str | None:
        """Leave the target replicating, whatever stopped it while we waited."""
        with self.m.target() as t:
            status = replication.read_status(t)
            if not status.configured or (status.io_running and status.sql_running):
                return None
            t.run(t.dialect.start_replica())
            replication.wait_running(t, 30)
        return "replication on the target was stopped; started it again"

    def _final(self, ctx: RunContext) -> BinlogPosition | None:
        f = _cut(ctx).get("final")
        return BinlogPosition(f["file"], f["pos"], f.get("gtid")) if f else None

    def done(self, ctx: RunContext) -> bool:
        final = self._final(ctx)
        if final is None:
            return False
        with self.m.target() as t:
            status = replication.read_status(t)
            if not status.configured:
                return False
            return _reached(t, final, 1) == "reached"

    def run(self, ctx: RunContext) -> str:
        ctx.on_cancel(self.m.close)
        final = inspector.binlog_position(self.m.shared("source"))
        _cut(ctx)["final"] = {"file": final.file, "pos": final.pos, "gtid": final.gtid_set}
        ctx.save()
        started = time.monotonic()
        t = self.m.shared("target")
        outcome = _reached(t, final, self.m.pb.cutover.timeout_s)
        if outcome != "reached":
            status = replication.read_status(t)
            raise StepFailed(
                f"the target did not apply the source's final position {final.file}:{final.pos} within "
                f"{self.m.pb.cutover.timeout_s:g} s ({outcome}; SQL thread "
                f"{'running' if status.sql_running else 'stopped'}{'; ' + status.last_error if status.last_error else ''})",
                hint=replication.hint_for(status))
        waited = time.monotonic() - started
        return (f"source's final position {final.file}:{final.pos}"
                + (f" (GTID {final.gtid_set})" if final.gtid_set else "")
                + f" applied on the target after {waited * 1000:.0f} ms")


def _reached(t: Session, final: BinlogPosition, timeout_s: float) -> str:
    d = t.dialect
    if final.gtid_set:
        return d.wait_outcome("gtid", t.value(d.wait_for_gtid(final.gtid_set, timeout_s)))
    return d.wait_outcome("position", t.value(d.wait_for_position(final.file, final.pos, timeout_s)))


class Promote(MigrationStep):
    name = "promote"
    timeout_s = 60.0

    def describe(self) -> str:
        return ("on the target: stop and reset replication, give the application accounts back the write "
                "privileges the block took (the REVOKE replicated there too), enable the events kept disabled, "
                "read_only off")

    def done(self, ctx: RunContext) -> bool:
        if not _cut(ctx).get("promoted"):
            return False
        with self.m.target() as t:
            return not replication.read_status(t).configured and not t.variable("read_only")

    def run(self, ctx: RunContext) -> str:
        cut = _cut(ctx)
        ctx.on_cancel(self.m.close)
        t = self.m.shared("target")
        d = t.dialect
        status = replication.read_status(t)
        if status.configured:
            cut["replica_at_promotion"] = {"gtid": status.executed_gtid_set, "file": status.exec_source_log_file,
                                           "pos": status.exec_source_log_pos}
            ctx.save()
            t.run(d.stop_replica())
            t.run(d.reset_replica_all())
        t.run(d.set_sql_log_bin(False))
        write_block.give_back(t, cut.get("revoked", []))
        enabled = self._set_events(t, ctx, enable=True)
        t.run(d.set_sql_log_bin(True))
        for stmt in d.set_read_only(False):
            t.run(stmt)
        cut["promoted"] = True
        return (f"target promoted: replication stopped and reset, write privileges given back "
                f"({len(cut.get('revoked', []))} grant(s)), {enabled} event(s) enabled, read_only OFF")

    def _set_events(self, t: Session, ctx: RunContext, *, enable: bool) -> int:
        names = ctx.data.get("seed", {}).get("enabled_events", [])
        for full in names:
            schema, name = full.split(".", 1)
            row = t.one("SELECT definer FROM information_schema.events WHERE event_schema = %s AND event_name = %s",
                        (schema, name))
            if row:
                events.set_enabled(t, schema, name, row["definer"], enable)
        return len(names)

    def rollback(self, ctx: RunContext) -> str | None:
        cut = _cut(ctx)
        at = cut.get("replica_at_promotion")
        with self.m.target() as t:
            d = t.dialect
            for stmt in d.set_read_only(True):
                t.run(stmt)
            t.run(d.set_sql_log_bin(False))
            self._set_events(t, ctx, enable=False)
            t.run(d.set_sql_log_bin(True))
            if not at:
                return "target set read_only again"
            status = replication.read_status(t)
            if not (status.configured and status.healthy):
                replication.stop_and_forget(t)
                host, port = self.m.source_host_for_target
                replication.configure(t, host=host, port=port, user=self.m.pb.replication.user,
                                      password=self.m.replication_password,
                                      position=BinlogPosition(at["file"], at["pos"], at.get("gtid")),
                                      mode=self.m.pb.replication.mode, tls=self.m.pb.source.tls.mode != "disabled",
                                      ca_file=str(self.m.pb.source.tls.ca_file) if self.m.pb.source.tls.ca_file else None)
                t.run(d.start_replica())
                replication.wait_running(t, 30)
        return "target read_only again and replicating from the source where it stopped"


class Repoint(MigrationStep):
    name = "repoint"
    point_of_no_return = True
    timeout_s = 60.0

    def __init__(self, m: Migration, repointer: Repointer, on_repoint: Callable[[bool], None] | None = None):
        super().__init__(m)
        self.repointer = repointer
        self.on_repoint = on_repoint or (lambda repointed: None)  # the probe follows, as the application would

    def describe(self) -> str:
        return self.repointer.describe(self.m.pb.target.host, self.m.pb.target.port) + " (the point of no return)"

    def done(self, ctx: RunContext) -> bool:
        known = self.repointer.points_to(self.m.pb.target.host, self.m.pb.target.port)
        return bool(_cut(ctx).get("repointed")) if known is None else known

    def run(self, ctx: RunContext) -> str:
        sentence = self.repointer.point_to(self.m.pb.target.host, self.m.pb.target.port)
        _cut(ctx)["repointed"] = True
        self.on_repoint(True)
        return sentence

    def rollback(self, ctx: RunContext) -> str | None:
        host, port = self.m.source_address
        sentence = self.repointer.point_to(host, port)
        _cut(ctx)["repointed"] = False
        self.on_repoint(False)
        return f"application endpoint back on the source: {sentence}"


class PostCheck(MigrationStep):
    name = "post_check"
    timeout_s = 30.0

    def __init__(self, m: Migration, app_endpoint):
        super().__init__(m)
        self.app_endpoint = app_endpoint  # () -> Endpoint, as the application reaches its database

    def describe(self) -> str:
        return "write a row through the application endpoint as the application and find it on the new primary"

    def done(self, ctx: RunContext) -> bool:
        return False  # cheap, and only meaningful now

    def run(self, ctx: RunContext) -> str:
        ep: Endpoint = self.app_endpoint()
        marker = int(time.time() * 1000) % 2_000_000_000
        deadline = time.monotonic() + 20
        while True:
            try:
                with connect(ep, attempts=1, connect_timeout=2, read_timeout=5) as app:
                    app.run(f"INSERT INTO {quote_ident(TOOL_SCHEMA)}.probe (run_id, seq, sent_at) "
                            "VALUES ('postcheck', %s, NOW(6))", (marker,))
                break
            except Exception as exc:  # noqa: BLE001 - retried until the deadline, then reported
                if time.monotonic() > deadline:
                    raise StepFailed(f"no write through the application endpoint {ep.host}:{ep.port} succeeded "
                                     f"after the repoint: {exc}",
                                     hint="the new primary is live; check the application accounts' grants on it") from None
                time.sleep(0.2)
        with self.m.target() as t:
            found = t.value(f"SELECT COUNT(*) FROM {quote_ident(TOOL_SCHEMA)}.probe WHERE run_id = 'postcheck' "
                            "AND seq = %s", (marker,))
        if not found:
            raise StepFailed("a write through the application endpoint did not land on the new primary",
                             hint="the endpoint still leads elsewhere: check the repoint")
        return f"a write through the application endpoint {ep.host}:{ep.port} landed on the new primary"


def steps(m: Migration, repointer: Repointer, app_endpoint, on_repoint=None) -> list[Step]:
    hook = [BeforeCutoverHook(m)] if m.pb.hooks.before_cutover else []
    return [Gates(m), *hook, BlockWrites(m), FinalPosition(m), Promote(m), Repoint(m, repointer, on_repoint),
            PostCheck(m, app_endpoint)]
