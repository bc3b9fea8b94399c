"""The switch, as data: the ordered steps that move the application from an old primary to a new one.

gates -> [hook] -> block_writes -> final_position -> promote -> repoint (the point of no return) ->
open_writes -> forget_old_source -> post_check -> [the old primary follows the new one].

The cutover runs them source -> target, the rollback target -> source. Before the repoint any failure rolls
back: the old primary writable again, the new one replicating read-only again, the endpoint where it was.
The new primary takes the application's writes only after the repoint (open_writes), so nothing the rollback
abandons can have been written there.

The facts a step keeps (`ctx.facts`) belong to this switch's attempt: a later attempt starts without them.
"""

from __future__ import annotations

import contextlib
import time

from migrate.adapters.db import DatabaseError, Session, connect, quote_ident
from migrate.adapters.dialect import BinlogPosition
from migrate.capabilities import accounts, events, heartbeat, heartbeat_event, inspector, phase, replication
from migrate.capabilities.inspector import TOOL_SCHEMA
from migrate.capabilities.switch import STEP_SLACK_S, Server, Switch
from migrate.errors import MigrateError, Refused, StepFailed
from migrate.runner import RunContext, Step

GATE_GRACE_S = 60.0
SAMPLE_EVERY_S = 0.25
# Once the gates hold, the block starts right after a sample applied within LOW_LAG_S, a bound that doubles
# every second it is not met (never above max_lag_s): what the replica still has to apply after the block
# is downtime, so the block waits a little for a moment when there is little of it.
LOW_LAG_S = 0.05
FOLLOW_START_TIMEOUT_S = 30.0


def _record_phase(sw: Switch, ctx: RunContext, why: str, **fields) -> None:
    """The migration's phase record follows a switch of production; a drill (rehearse) never touches it."""
    if not sw.drill:
        phase.update(ctx.state, why, **fields)


class SwitchStep(Step):
    def __init__(self, sw: Switch):
        self.sw = sw
        self.rollback_retry_s = sw.timeout_s  # a server that stopped answering for a moment may answer again


def _position(p: dict | None) -> BinlogPosition | None:
    return BinlogPosition(p["file"], p["pos"], p.get("gtid")) if p else None


def _as_dict(p: BinlogPosition) -> dict:
    return {"file": p.file, "pos": p.pos, "gtid": p.gtid_set}


def _toggle_events(s: Session, server: Server, names: list[str], *, enable: bool) -> int:
    """Enable (on a primary) or disable (on a replica, where they would diverge it) the events the source had
    enabled, out of the binary log. Never on RDS, whose binary log the master user cannot turn off."""
    if server.rds or not names:
        return 0
    changed = 0
    with replication.binlog_off(s):
        for full in names:
            schema, name = full.split(".", 1)
            row = s.one("SELECT definer, status FROM information_schema.events WHERE event_schema = %s AND "
                        "event_name = %s", (schema, name))
            if row and (row["status"] == "ENABLED") != enable:
                events.set_enabled(s, schema, name, row["definer"], enable)
                changed += 1
    return changed


class Gates(SwitchStep):
    """Checked before anything changes: the new primary replicates from the old one, healthy and caught up
    within max_lag_s continuously, and the probe acknowledges writes through the application endpoint."""

    name = "gates"
    changes_nothing = True

    def __init__(self, sw: Switch):
        super().__init__(sw)
        self.timeout_s = sw.stable_for_s + GATE_GRACE_S + 15

    def describe(self) -> str:
        sw = self.sw
        probe = "; the probe acknowledged writes through the application endpoint throughout" if sw.probe_gate else ""
        return (f"check, changing nothing: {sw.new.name} replicates from {sw.old.name}, healthy, and every position "
                f"sampled on {sw.old.name} is applied on {sw.new.name} within {sw.max_lag_s:g} s, continuously for "
                f"{sw.stable_for_s:g} s{probe}")

    def done(self, ctx: RunContext) -> bool:
        return False  # taken fresh on every attempt: a gate passed an hour ago says nothing now

    def run(self, ctx: RunContext) -> str:
        sw = self.sw
        ctx.on_cancel(sw.cancel)
        old, new = sw.old.shared(), sw.new.shared()  # kept open for the steps after
        self._static_checks(old, new)
        sw.repointer.prepare(*sw.new.address)  # e.g. SSH connections opened now, not while writes are blocked
        ctx.checkpoint("accounts, read_only and the probe's endpoint checked; sampling the replica")
        # The gates write the heartbeat themselves (and stop before the block: nothing may reach the old primary
        # after its final position); `migrate heartbeat` is paused for the whole switch.
        writer = (heartbeat.Writer(sw.old.endpoint, sw.heartbeat_s, f"migrate {sw.workflow} gates")
                  if sw.heartbeat_s else contextlib.nullcontext())
        with writer:
            return self._until_stable(ctx, old, new)

    def _until_stable(self, ctx: RunContext, old: Session, new: Session) -> str:
        sw = self.sw
        old_id = int(old.value("SELECT @@server_id"))
        deadline = time.monotonic() + sw.stable_for_s + GATE_GRACE_S
        stable_since, worst, samples, why_not, held_since = None, 0.0, 0, "", None
        while True:
            status = replication.read_status(new)
            self._replicating_from_old(status)
            lag = replication.true_lag_s(old, new, sw.max_lag_s)
            beat = heartbeat.read_lag(old, new, old_id) if sw.heartbeat_s else None
            now = time.monotonic()
            samples += 1
            if beat is not None and beat.fresh and beat.upper_s > sw.max_lag_s:
                stable_since, worst = None, 0.0
                why_not = f"the heartbeat lag ({beat.lag_s:.2f} s +-{beat.error_s:.2f}) went over {sw.max_lag_s:g} s"
            elif lag is None or (status.seconds_behind or 0) > sw.max_lag_s:
                stable_since, worst = None, 0.0
                why_not = f"the lag went over {sw.max_lag_s:g} s"
            else:
                stable_since = stable_since or now
                worst = max(worst, lag)
            if stable_since is not None and now - stable_since >= sw.stable_for_s:
                why_not = sw.probe_gate(sw.stable_for_s) if sw.probe_gate else None
                if why_not is None:
                    held_since = held_since or now
                    if lag <= min(sw.max_lag_s, LOW_LAG_S * 2 ** (now - held_since)):
                        probe = ("; the probe acknowledged writes through the application endpoint throughout"
                                 if sw.probe_gate else "")
                        beats = (f", heartbeat lag {beat.lag_s * 1000:.0f} ms (+-{beat.error_s * 1000:.0f})"
                                 if beat is not None and beat.fresh else "")
                        ctx.facts["lag_at_gates"] = {  # into the run's report, beside the write downtime
                            "applied_within_ms": round(lag * 1000, 1), "seconds_behind": status.seconds_behind,
                            "heartbeat_ms": round(beat.lag_s * 1000, 1) if beat and beat.fresh else None,
                            "heartbeat_error_ms": round(beat.error_s * 1000, 1) if beat and beat.fresh else None,
                            "clock_skew_ms": round(beat.clock_skew_s * 1000, 2) if beat else None}
                        return (f"{sw.new.name} replicates from {sw.old.name}, healthy and caught up: {samples} "
                                f"positions sampled, each applied within {worst * 1000:.0f} ms over "
                                f"{sw.stable_for_s:g} s, the last within {lag * 1000:.0f} ms{beats}{probe}")
                    time.sleep(SAMPLE_EVERY_S / 5)
                    continue
                held_since = None
                if why_not.startswith("the probe has acknowledged no write"):
                    raise Refused(f"the probe is not writing through the application endpoint: {why_not}",
                                  hint="the probe's account needs INSERT on _migrate (migrate start grants it to "
                                       "probe.user), and probe.host/port must lead to the application's database")
            if now > deadline:
                raise Refused(f"the gates did not hold for {sw.stable_for_s:g} s within "
                              f"{sw.stable_for_s + GATE_GRACE_S:g} s: {why_not}",
                              hint="wait for the replica to catch up and the application to write steadily "
                                   "(migrate status), or switch when the write load is lower")
            ctx.progress("waiting for a stable replica and probe", every_s=5)
            time.sleep(SAMPLE_EVERY_S)

    def _replicating_from_old(self, status) -> None:
        sw = self.sw
        if not status.configured:
            raise Refused(f"{sw.new.name} is not a replica of {sw.old.name}",
                          hint="after a cutover, the old primary follows the new one only when "
                               "cutover.reverse_replication is on and the cutover finished: see `migrate status`")
        if not status.healthy:
            raise Refused(f"replication on {sw.new.name} is not healthy: IO {status.io_state}, SQL "
                          f"{'running' if status.sql_running else 'stopped'}; {status.last_error or ''}",
                          hint=replication.hint_for(status))
        link = sw.new_from_old
        if (status.source_host, status.source_port) != (link.host, link.port):
            raise Refused(f"{sw.new.name} replicates from {status.source_host}:{status.source_port}, not from "
                          f"{sw.old.name} ({link.host}:{link.port})",
                          hint="the replica follows another server: check the playbook and the replica's "
                               "configuration")

    def _static_checks(self, old: Session, new: Session) -> None:
        sw = self.sw
        if sw.verify_gate:
            sw.verify_gate()
        if sw.heartbeat_event != "stop" and not sw.drill and (event := heartbeat_event.read(old)) \
                and event["status"] == "ENABLED":
            raise Refused(f"{heartbeat_event.FULL_NAME} runs on {sw.old.name} and this switch would not stop it "
                          "(heartbeat.event is off): it would write after the block",
                          hint="set heartbeat.event: true again, or run `migrate start` to drop the event, then retry")
        held = accounts.named(old, sw.app_users, what="application account(s) named in cutover.app_users",
                              where=sw.old.name, fix="fix cutover.app_users in the playbook")
        absent = [str(a) for a in held if not accounts.exists(new, a)]
        if absent:
            raise Refused(f"application account(s) {', '.join(absent)} do not exist on {sw.new.name}",
                          hint="rerun `migrate start` to carry them over")
        if not sw.new.rds and not new.variable("read_only"):
            raise Refused(f"{sw.new.name} is writable while it replicates: something may have written to it",
                          hint=f"set read_only=ON on {sw.new.name}, check that nothing wrote to it, then retry")
        if sw.probe_gate and sw.app.fixed and (sw.app.fixed == sw.old.address
                                               or sw.repointer.carries(sw.app()) is False):
            raise Refused(f"the probe's endpoint {sw.app.describe()} does not go through what the repoint moves "
                          f"(it reaches {sw.old.name} some other way): the probe could not see the application's "
                          "writes after the switch", hint="set probe.host/port to the application's endpoint (the "
                                                          "load balancer), or leave them unset so the probe follows "
                                                          "the repoint")


class BeforeHook(SwitchStep):
    name = "hook_before_cutover"
    changes_nothing = True  # as far as migrate knows: the hook is the user's

    def __init__(self, sw: Switch, command: str, timeout_s: float):
        super().__init__(sw)
        self.command = command
        self.timeout_s = timeout_s + 10

    def describe(self) -> str:
        return f"run the before_cutover hook `{self.command}`; a failure stops here, nothing changed"

    def done(self, ctx: RunContext) -> bool:
        return False

    def run(self, ctx: RunContext) -> str:
        ctx.checkpoint("running the before_cutover hook")
        self.sw.before_hook()
        return "before_cutover hook ran and said go"


class BlockWrites(SwitchStep):
    name = "block_writes"

    def __init__(self, sw: Switch):
        super().__init__(sw)
        self.timeout_s = sw.timeout_s + STEP_SLACK_S

    def describe(self) -> str:
        return self.sw.blocker.describe()

    def done(self, ctx: RunContext) -> bool:
        if ctx.facts.get("blocked_at") is None:
            return False
        with self.sw.old.session() as s:
            return self.sw.blocker.is_blocked(s, ctx.facts)

    def run(self, ctx: RunContext) -> str:
        sw = self.sw
        ctx.on_cancel(sw.cancel)
        s = sw.old.shared()
        ctx.facts.setdefault("blocked_at", time.time())  # from here on writes may fail: the downtime starts
        ctx.facts.setdefault("phase_before", phase.read(ctx.state).as_dict())
        _record_phase(sw, ctx, f"{sw.workflow} blocks writes on {sw.old.name}",
                      phase=phase.SWITCHING.get(sw.workflow), attempt=ctx.attempt, workflow=sw.workflow,
                      app_on=sw.old.name, writable=[])
        return sw.blocker.block(s, ctx)  # it saves (durably) what undoes it before it changes anything

    def rollback(self, ctx: RunContext) -> str | None:
        if ctx.facts.get("blocked_at") is None:
            return None
        with self.sw.old.session() as s:
            said = self.sw.blocker.release(s, ctx)
        before = ctx.facts.get("phase_before")
        if before and not self.sw.drill:  # as _record_phase: a drill's phase_before is never written back
            phase.write(ctx.state, phase.Phase(**{**before, "history": []}), why=f"{self.sw.workflow} undone")
        return said


class FinalPosition(SwitchStep):
    name = "final_position"
    persist_start = False  # it only reads and waits; a resumed run takes the position again

    def __init__(self, sw: Switch):
        super().__init__(sw)
        self.timeout_s = sw.timeout_s + STEP_SLACK_S

    def describe(self) -> str:
        return (f"read {self.sw.old.name}'s final binary-log position and wait, at most {self.sw.timeout_s:g} s, "
                f"until {self.sw.new.name} has applied it")

    def done(self, ctx: RunContext) -> bool:
        """Only this attempt's final position counts, and only while nothing was written after it."""
        final = _position(ctx.facts.get("final"))
        if final is None:
            return False
        with self.sw.old.session() as old, self.sw.new.session() as new:
            if inspector.binlog_position(old) != final:
                return False
            return replication.read_status(new).configured and replication.wait_applied(new, final, 1) == "reached"

    def run(self, ctx: RunContext) -> str:
        sw = self.sw
        ctx.on_cancel(sw.cancel)
        final = inspector.binlog_position(sw.old.shared())
        ctx.facts["final"] = _as_dict(final)  # saved with the step: a crash before that just takes it again
        ctx.checkpoint(f"final position {final.file}:{final.pos} taken; waiting for {sw.new.name}")
        started = time.monotonic()
        new = sw.new.shared()
        outcome = replication.wait_applied(new, final, sw.timeout_s)
        if outcome != "reached":
            status = replication.read_status(new)
            raise StepFailed(
                f"{sw.new.name} did not apply {sw.old.name}'s final position {final.file}:{final.pos} within "
                f"{sw.timeout_s:g} s ({outcome}; SQL thread {'running' if status.sql_running else 'stopped'}"
                f"{'; ' + status.last_error if status.last_error else ''})", hint=replication.hint_for(status))
        waited = time.monotonic() - started
        return (f"{sw.old.name}'s final position {final.file}:{final.pos}"
                + (f" (GTID {final.gtid_set})" if final.gtid_set else "")
                + f" applied on {sw.new.name} after {waited * 1000:.0f} ms")

    def rollback(self, ctx: RunContext) -> str | None:
        """Leave the new primary replicating, whatever stopped it while we waited."""
        with self.sw.new.session() as new:
            status = replication.read_status(new)
            if not status.configured or (status.io_running and status.sql_running):
                return None
            replication.start(new)
            replication.wait_running(new, FOLLOW_START_TIMEOUT_S)
        return f"replication on {self.sw.new.name} was stopped; started it again"


class Promote(SwitchStep):
    name = "promote"

    def __init__(self, sw: Switch):
        super().__init__(sw)
        self.timeout_s = sw.timeout_s + STEP_SLACK_S  # writes are blocked: bounded like the block itself

    def describe(self) -> str:
        n = self.sw.new.name
        return (f"on {n}: stop replication and record {n}'s own binary-log position (where the old primary will "
                f"follow from); {n} stays closed to the application's writes until the repoint is done (its stopped "
                "replication is forgotten after the repoint)")

    def done(self, ctx: RunContext) -> bool:
        if not ctx.facts.get("promoted"):
            return False
        with self.sw.new.session() as new:
            status = replication.read_status(new)
            return not (status.io_running or status.sql_running)

    def run(self, ctx: RunContext) -> str:
        sw, facts = self.sw, ctx.facts
        ctx.on_cancel(sw.cancel)
        new = sw.new.shared()
        status = replication.read_status(new)
        if status.configured:
            facts.setdefault("replica_at_promotion", {"gtid": status.executed_gtid_set,
                                                      "file": status.exec_source_log_file,
                                                      "pos": status.exec_source_log_pos})
            replication.stop(new)
        if "own_position" not in facts:  # before anything can write there: where the old primary follows from
            facts["own_position"] = _as_dict(inspector.binlog_position(new))
        ctx.save()  # both, before the new primary can be written to
        ctx.checkpoint(f"replication stopped on {sw.new.name}, its own position recorded")
        facts["promoted"] = True
        own = _position(facts["own_position"])
        return (f"{sw.new.name} promoted at its position {own.file}:{own.pos}"
                + (f" (GTID {own.gtid_set})" if own.gtid_set else "")
                + ": replication stopped; closed to the application's writes until the repoint is done")

    def rollback(self, ctx: RunContext) -> str | None:
        sw, facts = self.sw, ctx.facts
        at = _position(facts.get("replica_at_promotion")) if facts.get("replica_at_promotion", {}).get("file") else None
        with sw.new.session() as new:
            sw.promoter.make_read_only(new, ctx)
            _toggle_events(new, sw.new, sw.events, enable=False)
            status = replication.read_status(new)
            if status.configured and status.healthy:
                return f"{sw.new.name} read_only again; it still replicates from {sw.old.name}"
            if status.configured and at is None:
                replication.start(new)
            else:
                if at is None:
                    raise StepFailed(f"{sw.new.name} no longer replicates and its position at promotion was not "
                                     "recorded", hint=f"make {sw.new.name} a replica of {sw.old.name} by hand")
                replication.forget(new)
                replication.configure(new, sw.new_from_old, at, keep_history=True)
                replication.start(new)
            replication.wait_running(new, FOLLOW_START_TIMEOUT_S)
        return f"{sw.new.name} read_only again and replicating from {sw.old.name} where it stopped"


class Repoint(SwitchStep):
    name = "repoint"
    point_of_no_return = True
    always_recheck = True  # where the application points can always be asked (or is known from the facts)

    def __init__(self, sw: Switch):
        super().__init__(sw)
        self.timeout_s = max(60.0, sw.timeout_s + STEP_SLACK_S)  # a DNS change waits up to cutover.timeout_s

    def describe(self) -> str:
        return self.sw.repointer.describe(*self.sw.new.address)

    def done(self, ctx: RunContext) -> bool:
        known = self.sw.repointer.points_to(*self.sw.new.address)
        return bool(ctx.facts.get("repointed")) if known is None else known

    def skipped(self, ctx: RunContext) -> None:
        self._record(ctx)

    def run(self, ctx: RunContext) -> str:
        repointer = self.sw.repointer
        if "repoint_saved" not in ctx.facts:  # what the repoint replaces, saved before it changes anything
            ctx.facts["repoint_saved"] = repointer.snapshot(*self.sw.new.address)
            if ctx.facts["repoint_saved"] is not None:
                ctx.save()
        sentence = repointer.point_to(*self.sw.new.address)
        ctx.checkpoint(f"application endpoint pointed at {self.sw.new}")
        self._record(ctx)
        return sentence

    def _record(self, ctx: RunContext) -> None:
        sw = self.sw
        ctx.facts["repointed"] = True
        ctx.facts.setdefault("repointed_at", time.time())
        sw.app.follow(sw.new)
        _record_phase(sw, ctx, f"{sw.workflow} repointed the application to {sw.new.name}", app_on=sw.new.name,
                      writable=[sw.new.name])
        ctx.save()

    def rollback(self, ctx: RunContext) -> str | None:
        sw = self.sw
        saved = ctx.facts.get("repoint_saved")
        sentence = sw.repointer.restore(saved) if saved else sw.repointer.point_to(*sw.old.address)
        ctx.facts.pop("repoint_saved", None)
        ctx.facts["repointed"] = False
        sw.app.follow(sw.old)
        _record_phase(sw, ctx, f"{sw.workflow} pointed the application back to {sw.old.name}", app_on=sw.old.name)
        return f"application endpoint back on {sw.old.name}: {sentence}"


class OpenWrites(SwitchStep):
    """The new primary takes the application's writes once the application points at it, not before: a repoint
    that fails half-way (one application host of several moved, a DNS change taken but never in sync) is rolled
    back, and a write the application made on the new primary meanwhile would be abandoned there."""

    name = "open_writes"

    def __init__(self, sw: Switch):
        super().__init__(sw)
        self.timeout_s = sw.timeout_s + STEP_SLACK_S  # the application waits for it, as for the block

    def describe(self) -> str:
        sw = self.sw
        grants = "give the application the write privileges the block took, " \
            if sw.blocker.method == "revoke_and_kill" else ""
        writable = {"parameter_group": ", read_only back in its parameter group"}.get(
            sw.promoter.method, "" if sw.new.rds else ", read_only OFF")
        return f"on {sw.new.name}: {grants}enable the events kept disabled{writable}"

    def done(self, ctx: RunContext) -> bool:
        if not ctx.facts.get("opened"):
            return False
        with self.sw.new.session() as new:
            return self.sw.promoter.is_writable(new)

    def run(self, ctx: RunContext) -> str:
        sw = self.sw
        ctx.on_cancel(sw.cancel)
        new = sw.new.shared()
        handed = sw.blocker.hand_over(new, sw.new, ctx.facts)
        ctx.checkpoint(f"what the block took handed over on {sw.new.name}; enabling events, opening writes")
        enabled = _toggle_events(new, sw.new, sw.events, enable=True)
        writable = sw.promoter.make_writable(new, ctx)
        ctx.facts["opened"] = True
        return f"{sw.new.name} takes the application's writes: " + ", ".join(
            part for part in (handed, f"{enabled} event(s) enabled", writable) if part)


class ForgetSource(SwitchStep):
    """After the repoint, the new primary forgets the (stopped) replication from the old one: kept until then so
    that an undone switch could resume it, and out of the window the application waits through."""

    name = "forget_old_source"
    timeout_s = 60.0

    def describe(self) -> str:
        via = "mysql.rds_reset_external_master*" if self.sw.new.rds else "RESET REPLICA ALL"
        return f"on {self.sw.new.name}: forget its stopped replication from {self.sw.old.name} ({via})"

    def done(self, ctx: RunContext) -> bool:
        with self.sw.new.session() as new:
            return not replication.read_status(new).configured

    def run(self, ctx: RunContext) -> str:
        with self.sw.new.session() as new:
            if replication.read_status(new).configured:
                ctx.checkpoint(f"{self.sw.new.name} still knows its old source; forgetting it")
                replication.forget(new)
        return f"{self.sw.new.name} no longer replicates from {self.sw.old.name}"


class PostCheck(SwitchStep):
    name = "post_check"
    timeout_s = 30.0
    retry_s = 20.0

    def describe(self) -> str:
        return (f"write a row through the application endpoint as the probe's account and find it on "
                f"{self.sw.new.name}")

    def done(self, ctx: RunContext) -> bool:
        return False  # cheap, and only meaningful now

    def run(self, ctx: RunContext) -> str:
        sw = self.sw
        ep = sw.app()
        marker = int(time.time() * 1000) % 2_000_000_000
        deadline = time.monotonic() + self.retry_s
        while True:
            try:
                with connect(ep, attempts=1, connect_timeout=2, read_timeout=5) as app:
                    app.run(f"INSERT INTO {quote_ident(TOOL_SCHEMA)}.probe (run_id, seq, sent_at) "
                            "VALUES ('postcheck', %s, NOW(6))", (marker,))
                break
            except MigrateError as exc:
                ctx.checkpoint(f"a write through the endpoint failed: {exc.message[:200]}; retrying")
                if time.monotonic() > deadline:
                    raise StepFailed(f"no write through the application endpoint {ep.host}:{ep.port} as "
                                     f"{ep.user} succeeded after the repoint: {exc.message}; {self._diagnose(ep)}",
                                     hint=f"the application points at {sw.new.name}: fix what the line above "
                                          f"names, then rerun `migrate {sw.workflow}` to finish") from None
                time.sleep(0.2)
        ctx.checkpoint("a write through the application endpoint acknowledged; looking for it")
        with sw.new.session() as new:
            found = new.value(f"SELECT COUNT(*) FROM {quote_ident(TOOL_SCHEMA)}.probe WHERE run_id = 'postcheck' "
                              "AND seq = %s", (marker,))
        if not found:
            raise StepFailed(f"a write through the application endpoint {ep.host}:{ep.port} succeeded but is not "
                             f"on {sw.new.name}; {self._diagnose(ep)}",
                             hint="the endpoint leads elsewhere: check the repoint and probe.host/port")
        return f"a write through the application endpoint {ep.host}:{ep.port} landed on {sw.new.name}"

    def _diagnose(self, ep) -> str:
        """What is known: is the new primary writable, which server does the endpoint reach."""
        sw, said = self.sw, []
        try:
            with sw.new.session(attempts=1, connect_timeout=3) as new:
                new_id = new.value("SELECT @@server_id")
                ro = None if sw.new.rds else bool(new.variable("read_only"))
            said.append(f"{sw.new.name} (server_id {new_id}) is "
                        + ("reachable" if ro is None else "read_only" if ro else "writable"))
        except MigrateError as exc:
            new_id = None
            said.append(f"{sw.new.name} cannot be reached: {exc.message}")
        try:
            with connect(ep, attempts=1, connect_timeout=3, read_timeout=5) as app:
                reached = app.value("SELECT @@server_id")
            which = sw.new.name if reached == new_id else f"another server, not {sw.new.name}"
            said.append(f"the endpoint reaches server_id {reached} ({which})")
        except DatabaseError as exc:
            said.append(f"the endpoint answers: ({exc.code}) {exc.message.split(': ', 2)[-1]}")
        return "; ".join(said)


class Follow(SwitchStep):
    """The old primary becomes a replica of the new one (reverse replication after a cutover, forward
    replication again after a rollback), from the position the new primary had when it was promoted."""

    timeout_s = 120.0

    def __init__(self, sw: Switch):
        super().__init__(sw)
        self.name = "reverse_replication" if sw.workflow == "cutover" else "forward_replication"

    def describe(self) -> str:
        sw = self.sw
        ro = "" if sw.old.rds else f"{sw.old.name} read_only, "
        via = "mysql.rds_set_external_master*" if sw.old.rds else "change source"
        return (f"{ro}{sw.old.name} replicates from {sw.new.name} ({sw.old_from_new.describe()}, {via}) from the "
                f"position recorded at promotion; done once both threads run there")

    def done(self, ctx: RunContext) -> bool:
        with self.sw.old.session() as old:
            status = replication.read_status(old)
        link = self.sw.old_from_new
        return status.healthy and (status.source_host, status.source_port) == (link.host, link.port)

    def run(self, ctx: RunContext) -> str:
        sw = self.sw
        own = _position(ctx.facts.get("own_position"))
        if own is None:
            raise StepFailed(f"{sw.new.name}'s position at promotion was not recorded",
                             hint=f"make {sw.old.name} a replica of {sw.new.name} by hand")
        with sw.new.session() as new:
            account = replication.ensure_link_account(new, sw.old_from_new, sw.new.name, log_to_binlog=sw.new.rds)
        with sw.old.session() as old:
            if not sw.old.rds:
                for stmt in old.dialect.set_read_only(True):
                    old.run(stmt)
            _toggle_events(old, sw.old, sw.events, enable=False)
            replication.forget(old)
            how = replication.configure(old, sw.old_from_new, own, keep_history=True)
            ctx.checkpoint(f"{sw.old.name} configured to follow {sw.new.name} ({how}); starting it")
            replication.start(old)
            replication.wait_running(old, FOLLOW_START_TIMEOUT_S)
        return (f"{sw.old.name} replicates from {sw.new.name} ({how}); both threads running; {account}"
                + ("" if sw.old.rds else f"; {sw.old.name} read_only"))


class StopHeartbeatEvent(SwitchStep):
    """The source's heartbeat event (heartbeat.event) disabled, and no run of it left in its body, before the block:
    nothing may reach the old primary after its final position. Undone with the cutover."""

    name = "stop_heartbeat_event"
    timeout_s = heartbeat_event.STOP_WAIT_S + STEP_SLACK_S

    def describe(self) -> str:
        return (f"disable {heartbeat_event.FULL_NAME} on {self.sw.old.name} and wait until no run of it is left; "
                "enabled again only if this switch is undone")

    def done(self, ctx: RunContext) -> bool:
        with self.sw.old.session() as s:
            return heartbeat_event.stopped(s)

    def run(self, ctx: RunContext) -> str:
        s = self.sw.old.shared()
        found = heartbeat_event.read(s)
        if found is None:
            return f"no {heartbeat_event.FULL_NAME} on {self.sw.old.name} (run `migrate start` to install it)"
        if "heartbeat_event_was" not in ctx.facts:  # what undoing puts back, saved before the server changes
            ctx.facts["heartbeat_event_was"] = found["status"]
            ctx.save(durable=True)
        return heartbeat_event.stop(s, disabled=lambda: ctx.checkpoint(
            f"{heartbeat_event.FULL_NAME} disabled; waiting for a run of it still in its body"))

    def rollback(self, ctx: RunContext) -> str | None:
        if ctx.facts.get("heartbeat_event_was") != "ENABLED":
            return None
        with self.sw.old.session() as s:
            heartbeat_event.set_enabled(s, True)
        return f"{heartbeat_event.FULL_NAME} enabled again on {self.sw.old.name}"


class StartHeartbeatEvent(SwitchStep):
    """The rollback's last step: the source, primary again, writes its own heartbeat again (heartbeat.event)."""

    name = "start_heartbeat_event"
    timeout_s = 60.0

    def describe(self) -> str:
        return f"enable {heartbeat_event.FULL_NAME} on {self.sw.new.name}, the primary again"

    def done(self, ctx: RunContext) -> bool:
        with self.sw.new.session() as s:
            found = heartbeat_event.read(s)
        return found is None or found["status"] == "ENABLED"

    def run(self, ctx: RunContext) -> str:
        with self.sw.new.session() as s:
            if heartbeat_event.read(s) is None:
                return f"no {heartbeat_event.FULL_NAME} on {self.sw.new.name} (run `migrate start` to install it)"
            heartbeat_event.set_enabled(s, True)
        return f"{heartbeat_event.FULL_NAME} enabled on {self.sw.new.name}: it writes the heartbeat again"


def steps(sw: Switch, *, hook: str | None = None, hook_timeout_s: float = 60.0) -> list[Step]:
    before = [BeforeHook(sw, hook, hook_timeout_s)] if hook else []
    stop_event = [StopHeartbeatEvent(sw)] if sw.heartbeat_event == "stop" else []
    follow = [Follow(sw)] if sw.follow_after else []
    start_event = [StartHeartbeatEvent(sw)] if sw.heartbeat_event == "start" else []
    return [Gates(sw), *before, *stop_event, BlockWrites(sw), FinalPosition(sw), Promote(sw), Repoint(sw),
            OpenWrites(sw), ForgetSource(sw), PostCheck(sw), *follow, *start_event]
