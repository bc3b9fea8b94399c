"""The steps of `migrate start`: prepare the source, seed the target, carry accounts, replicate.

Each `done()` asks the servers; each `run()` ends with the sentence that goes to the journal.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from pathlib import PurePosixPath

from migrate import log
from migrate.adapters.db import Session, connect, quote_ident
from migrate.adapters.dialect import BinlogPosition
from migrate.capabilities import accounts, events, heartbeat_event, inspector, probe, replication
from migrate.capabilities.inspector import TOOL_SCHEMA, Account
from migrate.capabilities.migration import Migration
from migrate.capabilities.seed import logical, physical, rds_replica
from migrate.capabilities.seed.consistency import choose as choose_consistency
from migrate.errors import MigrateError, Refused, StepFailed
from migrate.runner import RunContext, Step

MIN_RETENTION_HOURS = 24


class MigrationStep(Step):
    def __init__(self, m: Migration):
        self.m = m


def app_accounts(source: Session, m: Migration) -> list[Account]:
    return accounts.named(source, m.pb.cutover.app_users, what="application account(s) named in cutover.app_users",
                          where="the source", fix="fix cutover.app_users in the playbook")


def probe_writers(source: Session, m: Migration) -> list[Account]:
    """The accounts that write the probe's rows: the application accounts and whatever account probe.user names."""
    users = list(m.pb.cutover.app_users)
    extra = m.pb.probe.user if m.pb.probe.enabled and m.pb.probe.user not in users else None
    found = app_accounts(source, m)
    if extra:
        found += accounts.named(source, [extra], what="probe.user", where="the source",
                                fix="set probe.user to an application account (or leave it unset: the first of "
                                    "cutover.app_users is used)")
    return found


def _rds_retention_hours(s: Session) -> int | None:
    return inspector.rds_retention_hours(inspector.rds_configuration(s))


class PrepareSource(MigrationStep):
    name = "prepare_source"
    timeout_s = 60.0

    def describe(self) -> str:
        return (f"on the source: binlog retention >= {MIN_RETENTION_HOURS} h (RDS), the tool's schema "
                f"{TOOL_SCHEMA} with the probe table, INSERT/SELECT on it for the application accounts and the "
                "probe's account")

    def done(self, ctx: RunContext) -> bool:
        with self.m.source() as s:
            if s.dialect.rds and (_rds_retention_hours(s) or 0) < MIN_RETENTION_HOURS:
                return False
            if not inspector.table_exists(s, TOOL_SCHEMA, probe.PROBE_TABLE):
                return False
            return all(inspector.has_grant_on(s, a, TOOL_SCHEMA) for a in probe_writers(s, self.m))

    def run(self, ctx: RunContext) -> str:
        said = []
        with self.m.source() as s:
            if s.dialect.rds:
                hours = _rds_retention_hours(s)
                if (hours or 0) < MIN_RETENTION_HOURS:
                    s.run(s.dialect.set_binlog_retention(MIN_RETENTION_HOURS))
                    said.append(f"binlog retention raised from {hours or 'NULL (purge at once)'} to "
                                f"{MIN_RETENTION_HOURS} h so the binlogs the replica needs stay")
            probe.ensure_probe_table(s)
            writers = probe_writers(s, self.m)
            for account in writers:
                probe.grant_probe(s, account.user, account.host)
        said.append(f"schema {TOOL_SCHEMA} ready; {', '.join(map(str, writers))} may write the probe's rows there")
        return "; ".join(said)


class ReplicationUser(MigrationStep):
    name = "replication_user"
    timeout_s = 60.0

    def describe(self) -> str:
        return f"create the replication account '{self.m.pb.replication.user}'@'%' on the source if missing"

    def _login(self) -> str | None:
        ep = self.m.source_endpoint()
        return replication.login_works(replace(ep, user=self.m.pb.replication.user,
                                               password=self.m.replication_password))

    def done(self, ctx: RunContext) -> bool:
        with self.m.source() as s:
            if not replication.can_replicate(s, self.m.pb.replication.user):
                return False
        return self._login() is None

    def run(self, ctx: RunContext) -> str:
        with self.m.source() as s:
            sentence = replication.ensure_user(s, self.m.pb.replication.user, self.m.replication_password)
        problem = self._login()
        if problem:
            raise Refused(f"the replication account cannot log in to the source: {problem}",
                          hint="the account existed with another password: set replication.password to it, "
                               "or change the account's password on the source")
        return sentence + "; its password works"


class Seed(MigrationStep):
    name = "seed"
    timeout_s = 24 * 3600.0

    def describe(self) -> str:
        return ("dump the source and load the target on the target host (mydumper/myloader or mysqldump), one "
                "consistent snapshot with its binary-log coordinates, binary logging off for the load")

    def _schemas(self, s: Session) -> list[str]:
        return inspector.schemas_to_copy(s, self.m.pb.seed.databases)

    def done(self, ctx: RunContext) -> bool:
        if not ctx.data.get("seed", {}).get("completed"):
            return False
        with self.m.source() as s, self.m.target() as t:
            schemas = self._schemas(s)
            wanted = {(r["schema"], r["name"]) for r in inspector.tables(s, schemas)}
            present = {(r["schema"], r["name"]) for r in inspector.tables(t, schemas)}
        return wanted <= present

    def run(self, ctx: RunContext) -> str:
        ctx.data.pop("seed", None)
        ctx.data.pop("replication", None)  # a new snapshot: replication starts from its coordinates
        ctx.save()
        with self.m.source() as s:
            schemas = self._schemas(s)
            tables = inspector.tables(s, schemas)
            table_count = len(tables)
            non_transactional = tuple(f"{t['schema']}.{t['name']} ({t['engine']})" for t in tables
                                      if (t["engine"] or "").upper() not in ("INNODB", "ROCKSDB"))
            global_lock = inspector.can_take_global_read_lock(s, rds=self.m.pb.source.kind == "rds")
            source_dialect = s.dialect
            source_events = inspector.events(s, schemas)
        ctx.data["seed_started"] = schemas  # from here on the target holds this seed's schemas, whole or not
        ctx.save()
        with self.m.target() as t:  # a resumed seed starts from a clean slate
            t.run(t.dialect.set_sql_log_bin(False))
            for schema in schemas:
                t.run(f"DROP DATABASE IF EXISTS {quote_ident(schema)}")
        if self.m.pb.seed.method == "physical":
            return self._physical(ctx, schemas, tables, source_dialect, source_events)
        consistency, why = choose_consistency(self.m.pb, global_lock)
        host, port = self.m.source_host_for_target
        dump_from = replace(self.m.source_endpoint(), host=host, port=port)
        position = None
        if consistency == "replica":
            dump_from = rds_replica.ensure(self.m.pb, self.m.source_endpoint(),
                                           say=lambda text: ctx.progress(text, every_s=0))
            ctx.data["seed_replica"] = {"host": dump_from.host, "port": dump_from.port}
            ctx.save()
            with connect(dump_from, attempts=3) as r, self.m.source() as s:
                position = rds_replica.stop_at_position(r, s)
        plan = logical.SeedPlan(
            source=dump_from, position=position,
            target=self.m.target_endpoint(), source_dialect=source_dialect, schemas=schemas, tables=table_count,
            threads=self.m.pb.seed.threads, tool=self.m.pb.seed.tool, global_lock=global_lock,
            non_transactional=non_transactional, data_bytes=sum(int(t["bytes"] or 0) for t in tables),
            rows=sum(int(t["est_rows"] or 0) for t in tables), rows_loaded=self._rows_inserted,
            table_names=tuple((t["schema"], t["name"]) for t in tables),
            workdir=str(PurePosixPath(str(self.m.pb.target.datadir)).parent / f"migrate-seed-{self.m.pb.name}"))
        ctx.on_cancel(self.m.close)
        plan = replace(plan, diagnose=self._diagnose, release=self._release_dump_sessions,
                       stall_s=self.m.pb.seed.stall_timeout_s)
        for attempt in (1, 2):
            try:
                result = logical.seed(self.m.target_host, plan, lambda what, done, total, unit: ctx.progress(
                    what, done=done, total=total, unit=unit), self.timeout_s)
                break
            except logical.SeedStalled as exc:
                if attempt == 2:
                    raise
                # Safe to repeat: nothing was loaded yet and the seed starts from a clean work directory.
                log.get().warning("the dump stalled and was stopped; starting it over once", reason=exc.message)
        released = f"; {rds_replica.release(self.m.pb, dump_from)}" if consistency == "replica" else ""
        ctx.data.pop("seed_replica", None)
        position = self._exact(result.position, source_dialect)
        self._record(ctx, result, position, schemas, consistency, source_events)
        return (f"seeded {len(schemas)} schema(s) ({', '.join(schemas)}) with {result.tool} in {result.seconds:.1f} s, "
                f"{result.dump_bytes / 1e6:.1f} MB; snapshot at {position.file}:{position.pos}"
                + (f", GTID {position.gtid_set}" if position.gtid_set else "")
                + f" ({result.consistency}); consistency {consistency}: {why}{released}")

    def _physical(self, ctx: RunContext, schemas: list[str], tables: list[dict], dialect,
                  source_events: list[dict]) -> str:
        pb = self.m.pb
        if pb.source.kind == "rds":
            raise Refused("seed.method physical: no physical copy can be taken out of RDS (xtrabackup and "
                          "mariadb-backup need the datadir, which RDS does not expose)", hint="set seed.method: dump")
        if pb.source.ssh is None or pb.source.datadir is None:
            raise Refused("seed.method physical needs source.ssh and source.datadir",
                          hint="set them, or use seed.method: dump")
        plan = physical.PhysicalPlan(
            source=self.m.source_endpoint(), source_ssh=pb.source.ssh, source_datadir=str(pb.source.datadir),
            dialect=dialect, target_datadir=str(pb.target.datadir), service=pb.target.service,
            workdir=str(PurePosixPath(str(pb.target.datadir)).parent / f"migrate-physical-{pb.name}"),
            data_bytes=sum(int(t["bytes"] or 0) for t in tables), threads=pb.seed.threads)
        ctx.on_cancel(self.m.close)
        result = physical.seed(self.m.source_host, self.m.target_host, plan, lambda what, done, total, unit:
                               ctx.progress(what, done=done, total=total, unit=unit), self.timeout_s)
        self._wait_target(timeout_s=120)
        position = self._exact(result.position, dialect)
        self._record(ctx, result, position, schemas, "physical", source_events)
        return (f"seeded every schema physically with {result.tool} in {result.seconds:.1f} s, "
                f"{result.dump_bytes / 1e6:.1f} MB; backup at {position.file}:{position.pos}"
                + (f", GTID {position.gtid_set}" if position.gtid_set else "") + f" ({result.consistency})")

    @staticmethod
    def _record(ctx: RunContext, result, position: BinlogPosition, schemas: list[str], consistency: str,
                source_events: list[dict]) -> None:
        """What later steps and the cutover need of the seed: where replication starts, what was copied."""
        ctx.data["seed"] = {**result.as_dict(), "gtid": position.gtid_set, "schemas": schemas, "completed": True,
                            "consistency": consistency, "enabled_events": events.enabled_names(source_events)}

    def _wait_target(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.m.target(attempts=1, connect_timeout=2).close()
                return
            except MigrateError as exc:
                if time.monotonic() > deadline:
                    raise StepFailed(f"the target does not answer after the physical seed: {exc.message}",
                                     hint="the copy carries the source's accounts: target.user must exist on the "
                                          "source with the same password; check the target's error log") from None
                time.sleep(0.5)

    def _diagnose(self) -> str:
        """The source's busy sessions, for the message of a stalled dump (read-only)."""
        try:
            with self.m.source(read_only=True, attempts=1, connect_timeout=5) as s:
                rows = s.run("SELECT id, user, time, state, LEFT(info, 100) AS info FROM "
                             "information_schema.processlist WHERE command <> 'Sleep' AND id <> CONNECTION_ID() "
                             "ORDER BY time DESC LIMIT 8")
        except MigrateError as exc:
            return f"(could not read the process list: {exc.message})"
        return "; ".join(f"id {r['id']} {r['user']} {r['time']} s {r['state'] or ''}: {r['info'] or ''}"
                         for r in rows) or "no busy session"

    def _release_dump_sessions(self) -> int:
        """Kill the source sessions of a stopped dump still taking table locks (only LOCK TABLE / FLUSH TABLE
        statements of the source account), and wait until they are gone (KILL returns before the session is)."""
        with self.m.source(attempts=1, connect_timeout=5) as s:
            ids = [r["id"] for r in s.run(
                "SELECT id FROM information_schema.processlist WHERE user = %s AND id <> CONNECTION_ID() AND "
                "(info LIKE 'LOCK TABLE%%' OR info LIKE 'FLUSH TABLE%%')",
                (self.m.pb.source.user,))]
            for connection_id in ids:
                with contextlib.suppress(MigrateError):  # gone by itself meanwhile
                    s.run(s.dialect.kill(connection_id))
            deadline = time.monotonic() + 10
            while ids and time.monotonic() < deadline:
                left = s.value("SELECT COUNT(*) FROM information_schema.processlist WHERE id IN ("
                               + ", ".join(str(int(i)) for i in ids) + ")")
                if not left:
                    break
                time.sleep(0.1)
        return len(ids)

    def _rows_inserted(self) -> int:
        with self.m.target(attempts=1) as t:
            return int(t.one("SHOW GLOBAL STATUS LIKE 'Handler_write'")["Value"])  # rows written, any engine

    def _exact(self, position: BinlogPosition, dialect) -> BinlogPosition:
        """MariaDB: the GTID of the snapshot's file/position, computed by the source itself."""
        if not dialect.is_mariadb:
            return position
        with self.m.source() as s:
            gtid = s.value(dialect.gtid_at(position.file, position.pos))
        if gtid and position.gtid_set and gtid != position.gtid_set:
            log.get().warning("snapshot GTID differs from the tool's; using the source's", tool=position.gtid_set,
                              source=gtid)
        return BinlogPosition(position.file, position.pos, gtid or position.gtid_set)


# Durability the load can do without (a crash mid-load means seeding again anyway), and a redo log big
# enough that the load is not throttled by checkpoints. All restored after the load.
LOAD_REDO_BYTES = 1 << 30
LOAD_REDO_FROM_DATA_BYTES = 512 << 20  # resizing costs seconds each way: only worth it for a big load


BUFFER_POOL_CHUNK = 128 << 20
BUFFER_POOL_SHARE_OF_RAM = 0.5


def load_settings(t: Session, *, data_bytes: int, host_free_bytes: int | None) -> dict[str, int]:
    """The settings a load runs with on this server: only those it has and can change online.

    The buffer pool grows (never shrinks) towards the data size, within half of the host's free memory."""
    wanted = {"innodb_flush_log_at_trx_commit": 0, "sync_binlog": 0}
    pool = int(t.variable("innodb_buffer_pool_size"))
    if host_free_bytes:
        room = int(host_free_bytes * BUFFER_POOL_SHARE_OF_RAM)
        bigger = min(-(-int(data_bytes * 1.2) // BUFFER_POOL_CHUNK) * BUFFER_POOL_CHUNK, room // BUFFER_POOL_CHUNK
                     * BUFFER_POOL_CHUNK)
        if bigger > pool:
            wanted["innodb_buffer_pool_size"] = bigger
    redo = t.dialect.online_redo_log_variable
    if redo and data_bytes >= LOAD_REDO_FROM_DATA_BYTES and int(t.variable(redo)) < LOAD_REDO_BYTES:
        wanted[redo] = LOAD_REDO_BYTES
    return wanted


def _current(t: Session, names) -> dict[str, int]:
    return {name: int(t.variable(name)) for name in names}


class TuneTargetForLoad(MigrationStep):
    name = "tune_target_for_load"
    timeout_s = 300.0  # resizing the redo log takes a moment

    def describe(self) -> str:
        return ("relax the target for the load (innodb_flush_log_at_trx_commit=0, sync_binlog=0, a 1 GiB redo log "
                "and a buffer pool near the data size where they can change online, within half the host's free "
                "memory); the originals are kept in the run state")

    def done(self, ctx: RunContext) -> bool:
        if self.m.pb.seed.method == "physical":
            return True  # no load: the server restarts on a copied datadir with its configured settings
        if ctx.data.get("seed", {}).get("completed") and "load_settings" not in ctx.data:
            return True  # the load is behind us: nothing to relax for
        relaxed = ctx.data.get("load_relaxed")
        if "load_settings" not in ctx.data or not relaxed:
            return False
        with self.m.target() as t:
            return _current(t, relaxed) == relaxed

    def run(self, ctx: RunContext) -> str:
        with self.m.source() as s:
            data_bytes = sum(int(x["bytes"] or 0) for x in inspector.tables(
                s, inspector.schemas_to_copy(s, self.m.pb.seed.databases)))
        free = self.m.target_host.run("awk '/MemAvailable/ {print $2 * 1024}' /proc/meminfo", timeout=30,
                                      check=False).text.strip()
        with self.m.target() as t:
            relaxed = ctx.data.get("load_relaxed") or load_settings(
                t, data_bytes=data_bytes, host_free_bytes=int(float(free)) if free else None)
            # Saved before anything changes, and only once: a rerun must not mistake relaxed values for originals.
            originals = ctx.data.setdefault("load_settings", _current(t, relaxed))
            ctx.data["load_relaxed"] = relaxed
            ctx.save()
            for name, value in relaxed.items():
                t.run(f"SET GLOBAL {name} = %s", (value,))
        return "target relaxed for the load: " + ", ".join(f"{k} {originals[k]} -> {v}" for k, v in relaxed.items())


class RestoreTargetSettings(MigrationStep):
    name = "restore_target_settings"
    timeout_s = 60.0

    def describe(self) -> str:
        return "put the target's durability settings back as they were before the load"

    def done(self, ctx: RunContext) -> bool:
        return "load_settings" not in ctx.data

    def run(self, ctx: RunContext) -> str:
        originals = ctx.data["load_settings"]
        with self.m.target() as t:
            for name, value in originals.items():
                t.run(f"SET GLOBAL {name} = %s", (value,))
            now = _current(t, originals)
        if now != originals:
            raise StepFailed(f"the target's settings read {now} after restoring {originals}",
                             hint="set them by hand (SET GLOBAL ...), then rerun `migrate start`")
        del ctx.data["load_settings"]
        ctx.data.pop("load_relaxed", None)
        return "target durability restored: " + ", ".join(f"{k}={v}" for k, v in originals.items())


class CarryAccounts(MigrationStep):
    name = "accounts"
    timeout_s = 300.0

    def describe(self) -> str:
        which = "every account and role of the source (but the service's own and migrate's)" \
            if self.m.pb.seed.accounts == "all" else "the application accounts (and the probe's)"
        return (f"recreate on the target {which} and the DEFINER accounts of triggers, routines, views and events, "
                "with their authentication (hashes), TLS requirements, limits and grants (binary logging off)")

    def _chosen(self, s: Session, ctx: RunContext) -> accounts.Selection:
        schemas = ctx.data.get("seed", {}).get("schemas") or inspector.schemas_to_copy(s, self.m.pb.seed.databases)
        return selection(s, self.m, schemas)

    def done(self, ctx: RunContext) -> bool:
        if "accounts" not in ctx.data:
            return False
        with self.m.source() as s, self.m.target() as t:
            return not accounts.differences(s, t, self._chosen(s, ctx), ctx.data["accounts"].get("unapplied", []))

    def run(self, ctx: RunContext) -> str:
        with self.m.source() as s, self.m.target() as t:
            result = accounts.carry(s, t, self._chosen(s, ctx))
        ctx.data["accounts"] = result.as_dict()
        skipped = f"; skipped: {', '.join(x['account'] + ' (' + x['why'] + ')' for x in result.skipped)}" \
            if result.skipped else ""
        return f"carried {len(result.carried)} account(s) to the target: {', '.join(result.carried)}{skipped}"


def selection(s: Session, m: Migration, schemas: list[str]) -> accounts.Selection:
    """What the accounts step carries; `plan` shows the same list."""
    required = [*probe_writers(s, m), *inspector.definers(s, schemas)]
    return accounts.select(s, mode=m.pb.seed.accounts, required=required, skip=m.pb.seed.skip_accounts,
                           own={m.pb.replication.user, m.pb.target.user})


class DisableEvents(MigrationStep):
    name = "events_disabled"
    timeout_s = 60.0

    def describe(self) -> str:
        return "disable on the target the events the dump carried (they would run on the replica and diverge it)"

    def _enabled(self, t: Session, ctx: RunContext) -> list[dict]:
        schemas = ctx.data.get("seed", {}).get("schemas", [])
        return [e for e in inspector.events(t, schemas) if e["status"] == "ENABLED"] if schemas else []

    def done(self, ctx: RunContext) -> bool:
        with self.m.target() as t:
            return not self._enabled(t, ctx)

    def run(self, ctx: RunContext) -> str:
        with self.m.target() as t:
            enabled = self._enabled(t, ctx)
            t.run(t.dialect.set_sql_log_bin(False))
            for e in enabled:
                events.set_enabled(t, e["schema"], e["name"], e["definer"], enable=False)
        return f"{len(enabled)} event(s) disabled on the target until promotion"


class StartReplication(MigrationStep):
    name = "replication"
    timeout_s = 120.0
    start_timeout_s = 30.0

    def describe(self) -> str:
        link = self.m.forward_link
        return (f"make the target a replica of {link.host}:{link.port} from the snapshot's coordinates (or start it "
                "again where it stopped, once configured), wait for both threads")

    def _replicates_from_source(self, status) -> bool:
        link = self.m.forward_link
        return status.configured and (status.source_host, status.source_port) == (link.host, link.port)

    def done(self, ctx: RunContext) -> bool:
        with self.m.target() as t:
            status = replication.read_status(t)
        return self._replicates_from_source(status) and status.healthy

    def run(self, ctx: RunContext) -> str:
        link = self.m.forward_link
        with self.m.target() as t:
            status = replication.read_status(t)
            if ctx.data.get("replication") and self._replicates_from_source(status):
                # Configured from this seed by an earlier run: it goes on from where it has applied, never from
                # the snapshot again (that would replay, or overwrite, what it applied since).
                replication.start(t)
                how = f"{ctx.data['replication']['how']}; started again where it had stopped"
            elif ctx.data.get("replication"):
                how = self._resume_lost(t, link, ctx)
            else:
                seed = ctx.data["seed"]
                replication.forget(t)
                how = replication.configure(t, link, BinlogPosition(seed["file"], seed["pos"], seed.get("gtid")))
                ctx.data["replication"] = {"how": how}
                replication.start(t)
            status = replication.wait_running(t, self.start_timeout_s)
            made_read_only = not t.variable("read_only")
            if made_read_only:  # nothing but replication may write to the replica
                for stmt in t.dialect.set_read_only(True):
                    t.run(stmt)
        return (f"target replicates from {link.host}:{link.port} ({how}); both threads running, "
                f"{status.seconds_behind if status.seconds_behind is not None else '?'} s behind; read_only "
                + ("switched ON" if made_read_only else "stays ON"))


    @staticmethod
    def _resume_lost(t: Session, link, ctx: RunContext) -> str:
        """Replication was configured by an earlier run and its settings are gone since (RESET SLAVE ALL, a
        rebuilt target): the target has applied past the snapshot, so it goes on from what it applied — its
        own GTID position — never from the snapshot again, which would replay rows (error 1062). Without GTIDs
        that position is lost with the settings: refused."""
        seed = ctx.data["seed"]
        if not seed.get("gtid") or link.mode == "file":
            raise Refused("the target's replication settings are gone, and with file/position replication the "
                          "point it had applied up to went with them: starting again from the snapshot would "
                          "replay what it applied", hint="reseed: drop the copied schemas on the target, then "
                          "rerun `migrate start` (or configure replication by hand from its last applied position)")
        at = t.value(t.dialect.replica_gtid_position())  # what it applied (MySQL: its gtid_executed)
        if not at:
            raise Refused("the target's replication settings are gone and it records no applied GTID position: "
                          "starting again from the snapshot would replay what it applied",
                          hint="reseed: drop the copied schemas on the target, then rerun `migrate start`")
        replication.configure(t, link, BinlogPosition(seed["file"], seed["pos"], at), keep_history=True)
        replication.start(t)
        return ("its settings were gone: configured again from what it had applied"
                + (f" ({at})" if t.dialect.is_mariadb else ", by GTID auto-position"))


class HeartbeatEvent(MigrationStep):
    """Last, once the target replicates: the CREATE EVENT reaches it through replication, where the server keeps
    the event disabled (a dump made after it would carry it enabled: `events_disabled` disables it then)."""

    name = "heartbeat_event"
    timeout_s = heartbeat_event.STOP_WAIT_S + 30

    def describe(self) -> str:
        if self.m.pb.heartbeat.event:
            return (f"install {heartbeat_event.FULL_NAME} on the source: the source writes the heartbeat itself "
                    f"every {self.m.pb.heartbeat.interval_s:g} s (its event scheduler must be on)")
        return f"drop {heartbeat_event.FULL_NAME} from the source if an earlier run installed it (heartbeat.event is off)"

    def done(self, ctx: RunContext) -> bool:
        with self.m.source() as s:
            if self.m.pb.heartbeat.event:
                return heartbeat_event.installed(s, self.m.pb.heartbeat.interval_s)
            return heartbeat_event.read(s) is None

    def run(self, ctx: RunContext) -> str:
        with self.m.source() as s:
            if self.m.pb.heartbeat.event:
                return heartbeat_event.install(s, self.m.pb.heartbeat.interval_s)
            return heartbeat_event.drop(s) or "heartbeat.event is off: no heartbeat event on the source"


def steps(m: Migration, *, heartbeat_event: bool = True) -> list[Step]:
    """`heartbeat_event=False`: a rehearsal's seed, which leaves the source's heartbeat event as it is."""
    return [PrepareSource(m), ReplicationUser(m), TuneTargetForLoad(m), Seed(m), RestoreTargetSettings(m),
            CarryAccounts(m), DisableEvents(m), StartReplication(m), *([HeartbeatEvent(m)] if heartbeat_event else [])]
