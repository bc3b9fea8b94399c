"""The fire drill's own steps around the switch (`migrate rehearse`):

    real_block_allowed -> seed_rehearsal -> drill_account -> [the cutover's steps, source -> rehearsal, in drill form] ->
    production_untouched -> cleanup

The rehearsal server is seeded afresh on every rehearse; the write block acts only on a drill account the
tool creates on the source for the drill (the application's accounts are never touched), and the repoint moves
`rehearsal.repoint`, never the application's endpoint. At the end the drill proves production was untouched.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import PurePosixPath

from pydantic import SecretStr

from migrate import log
from migrate.adapters.db import Session, connect, quote_account, quote_ident
from migrate.adapters.dialect import BinlogPosition
from migrate.capabilities import accounts, inspector, replication
from migrate.capabilities.inspector import TOOL_SCHEMA
from migrate.capabilities.migration import Migration
from migrate.capabilities.repoint.base import Repointer
from migrate.capabilities.seed import physical
from migrate.capabilities.switch import AppEndpoint, Switch
from migrate.capabilities.write_block import WriteBlocker, sessions_of
from migrate.errors import MigrateError, StepFailed
from migrate.runner import RunContext, Step

SERVER_START_TIMEOUT_S = 120.0
# The drill opens as many idle sessions as the application holds on the source, so the kill is timed on as many
# sessions as the cutover's; above this many, the prediction scales the measured per-session cost instead.
MAX_DRILL_SESSIONS = 100
DRILL_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


class RehearsalStep(Step):
    def __init__(self, m: Migration, sw: Switch):
        self.m, self.sw = m, sw

    def done(self, ctx: RunContext) -> bool:
        return False  # every rehearse is a new drill: nothing of an earlier one counts


class RealBlockAllowed(RehearsalStep):
    """What the drill cannot do for real, checked as `plan` does, reading only: the cutover's own block would be
    allowed on the source (its method, the accounts named, their grants revocable, the privileges to revoke and
    kill) and its repoint can act on the application's endpoint."""

    name = "real_block_allowed"
    changes_nothing = True
    timeout_s = 60.0

    def __init__(self, m: Migration, sw: Switch, cutover_repointer: Repointer, cutover_blocker: WriteBlocker):
        super().__init__(m, sw)
        self.cutover_repointer, self.cutover_blocker = cutover_repointer, cutover_blocker

    def describe(self) -> str:
        return (f"check, changing nothing: the cutover's write block ({self.m.pb.cutover.write_block}) would be "
                f"allowed on the source for {', '.join(self.cutover_blocker.users) or '(none)'}, and its repoint "
                f"({self.m.pb.cutover.repoint.method}) can act")

    def run(self, ctx: RunContext) -> str:
        with self.m.source() as s:
            accounts.named(s, self.cutover_blocker.users, what="application account(s)", where="the source",
                           fix="fix cutover.app_users (and probe.user) in the playbook")
            block = self.cutover_blocker.check(s)
        repoint = self.cutover_repointer.check()
        return f"the cutover's block would {block}; its repoint: {repoint}"


class SeedRehearsal(RehearsalStep):
    """The rehearsal's endpoint back on the source, then the rehearsal server seeded and replicating."""

    name = "seed_rehearsal"

    def __init__(self, m: Migration, sw: Switch, dump: Callable[[], str]):
        super().__init__(m, sw)
        self.timeout_s = m.rehearsal.timeout_s
        self.dump = dump  # seeds the rehearsal server from the source as `start` seeds the target

    def describe(self) -> str:
        r = self.m.rehearsal
        if r.seed == "dump":
            return ("point the rehearsal's endpoint at the source; seed the rehearsal server from the source with "
                    "`start`'s own steps (dump, accounts, events kept disabled, replication from the snapshot's "
                    "coordinates), under a state of its own, new on every rehearse")
        return (f"point the rehearsal's endpoint at the source; on the rehearsal host, replace {r.datadir} with a "
                "physical copy of the target taken on the target host (mariadb-backup/xtrabackup --slave-info: RDS "
                "is not touched), restart it, and make it a read-only replica of the source from where the copied "
                "target had applied")

    def run(self, ctx: RunContext) -> str:
        sw, r = self.sw, self.m.rehearsal
        if sw.repointer.points_to(*sw.old.address) is not True:
            sw.repointer.point_to(*sw.old.address)  # an earlier drill left it on the rehearsal server
        sw.app.follow(sw.old)
        sw.new.close()  # its server is about to be seeded again
        if r.seed == "dump":
            ctx.checkpoint("the rehearsal's endpoint is on the source; seeding the rehearsal server from the source")
            return self.dump()
        ctx.checkpoint("the rehearsal's endpoint is on the source; cloning the target")
        result = physical.seed(self.m.target_host, self.m.rehearsal_host, self._plan(),
                               lambda what, done, total, unit: ctx.progress(what, done=done, total=total, unit=unit),
                               self.timeout_s)
        position = result.position
        with self._wait_server() as s:
            for stmt in s.dialect.set_read_only(True):
                s.run(stmt)
            position = applied_position(s, position)
            replication.forget(s)
            how = replication.configure(s, sw.new_from_old, position)
            replication.start(s)
            replication.wait_running(s, 30)
        ctx.facts["rehearsal_seed"] = {"seconds": round(result.seconds, 2), "bytes": result.dump_bytes,
                                       "gtid": position.gtid_set, "file": position.file, "pos": position.pos}
        return (f"rehearsal server cloned from the target with {result.tool} in {result.seconds:.1f} s "
                f"({result.dump_bytes / 1e6:.1f} MB; {result.consistency}); it replicates from the source ({how}), "
                "read_only")

    def _plan(self) -> physical.PhysicalPlan:
        pb, r = self.m.pb, self.m.rehearsal
        if pb.target.ssh is None and r.ssh is not None:
            raise StepFailed("rehearsal.seed clone_target pulls the copy from the target host over SSH: target.ssh is "
                             "not set", hint="set target.ssh, or run migrate on the rehearsal host")
        with self.m.target() as t:
            data_bytes = int(t.value("SELECT COALESCE(SUM(data_length + index_length), 0) FROM "
                                     "information_schema.tables WHERE table_schema NOT IN ('mysql', "
                                     "'information_schema', 'performance_schema', 'sys')") or 0)
        return physical.PhysicalPlan(
            source=self.m.target_endpoint(), source_ssh=pb.target.ssh, source_datadir=str(pb.target.datadir),
            dialect=self.m.target_dialect, target_datadir=str(r.datadir), service=r.service,
            workdir=str(PurePosixPath(str(r.datadir)).parent / f"migrate-rehearsal-{pb.name}"),
            data_bytes=data_bytes, threads=pb.seed.threads, of_replica=True, keep_previous=False)

    def _wait_server(self) -> Session:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                return self.sw.new.session(attempts=1, connect_timeout=2)
            except MigrateError as exc:
                if time.monotonic() > deadline:
                    raise StepFailed(f"the rehearsal server did not accept {self.m.rehearsal.user} within "
                                     f"{SERVER_START_TIMEOUT_S:g} s after the copy: {exc.message}",
                                     hint="check rehearsal.service.start and the server's error log; the copy "
                                          "carries the target's accounts, so rehearsal.user must be one of them") from None
                time.sleep(0.5)


def applied_position(s: Session, recorded: BinlogPosition) -> BinlogPosition:
    """Where the copy of a MariaDB replica had applied its source's binary log: its own mysql.gtid_slave_pos,
    written in the same transactions as the rows, so exactly consistent with them. The `--slave-info` text is
    read beside the copy, not in it: under parallel replication it was measured behind the copied rows (the
    clone then stopped on duplicate keys). MySQL keeps the recorded coordinates."""
    if not s.dialect.is_mariadb:
        return recorded
    own = s.value(s.dialect.replica_gtid_position())
    return dataclasses.replace(recorded, gtid_set=own) if own else recorded


class DrillAccount(RehearsalStep):
    """The account the drill writes and blocks as: created on the source like an application account (on the
    tool's schema only), replicated to the rehearsal server; as many idle sessions of it as the application
    holds on the source, so the block kills as many."""

    name = "drill_account"
    timeout_s = 120.0

    def __init__(self, m: Migration, sw: Switch, password: str, start_probe):
        super().__init__(m, sw)
        self.password, self.start_probe = password, start_probe
        self.sessions: list[Session] = []

    @property
    def user(self) -> str:
        return self.m.rehearsal.drill_user

    def describe(self) -> str:
        return (f"on the source: create the drill account {self.user}@'%' with {DRILL_PRIVILEGES} on {TOOL_SCHEMA} "
                "only, wait until the rehearsal server has it, open as many idle sessions of it as the application "
                "holds on the source, and start the drill's probe through the rehearsal's endpoint")

    def run(self, ctx: RunContext) -> str:
        sw, account = self.sw, quote_account(self.user, "%")
        s = sw.old.shared()
        s.run(f"DROP USER IF EXISTS {account}")  # whatever an earlier drill left, revoked or not
        s.run(s.dialect.create_user(self.user, self.password, "%"))
        s.run(f"GRANT {DRILL_PRIVILEGES} ON {quote_ident(TOOL_SCHEMA)}.* TO {account}")
        created = inspector.binlog_position(s)
        ctx.checkpoint("drill account created on the source; waiting for the rehearsal server to have it")
        new = sw.new.shared()
        if replication.wait_applied(new, created, sw.timeout_s) != "reached":  # within the session's read timeout
            status = replication.read_status(new)
            raise StepFailed(f"the rehearsal server did not apply the drill account's creation within "
                             f"{sw.timeout_s:g} s: IO {status.io_state}, SQL "
                             f"{'running' if status.sql_running else 'stopped'}"
                             + (f"; {status.last_error}" if status.last_error else ""),
                             hint=replication.hint_for(status))
        app_sessions = len(sessions_of(s, self.m.pb.cutover.app_users))
        endpoint = dataclasses.replace(sw.old.endpoint(), user=self.user, password=SecretStr(self.password),
                                       label="drill session")
        for _ in range(min(app_sessions, MAX_DRILL_SESSIONS)):
            self.sessions.append(connect(endpoint, attempts=1, connect_timeout=5))
        ctx.facts["drill"] = {"app_sessions": app_sessions, "drill_sessions": len(self.sessions)}
        self.start_probe()
        return (f"drill account {self.user} on the source and the rehearsal server; {len(self.sessions)} idle "
                f"session(s) of it opened ({app_sessions} of the application's on the source); the drill's probe "
                f"writes through {sw.app.describe()}")

    def close(self) -> None:
        for session in self.sessions:
            session.close()
        self.sessions = []

    def drop(self) -> str:
        """Drop the drill account on the source (and so on the target, through replication). Idempotent."""
        self.close()
        with self.sw.old.session() as s:
            s.run(f"DROP USER IF EXISTS {quote_account(self.user, '%')}")
        return f"drill account {self.user} dropped on the source"


class ProductionUntouched(RehearsalStep):
    """Read-only proof that the drill left production alone."""

    name = "production_untouched"
    changes_nothing = True
    timeout_s = 60.0

    def __init__(self, m: Migration, sw: Switch, app: AppEndpoint, cutover_repointer: Repointer):
        super().__init__(m, sw)
        self.app, self.cutover_repointer = app, cutover_repointer

    def describe(self) -> str:
        return ("check, changing nothing but one probe row: a write as the application's account through its "
                "endpoint lands on the source; the application's endpoint still points at the source; the target is "
                "still a healthy read-only replica of the source")

    def run(self, ctx: RunContext) -> str:
        m, said = self.m, []
        with m.source() as s:
            source_id = s.value("SELECT @@server_id")
        ep = self.app()
        with connect(ep, attempts=3, connect_timeout=5) as app:
            app.run(f"INSERT INTO {quote_ident(TOOL_SCHEMA)}.probe (run_id, seq, sent_at) VALUES "
                    "('rehearsal', %s, NOW(6))", (int(time.time()) % 2_000_000_000,))
            reached = app.value("SELECT @@server_id")
        if reached != source_id:
            raise StepFailed(f"the application's endpoint {ep.host}:{ep.port} reaches server_id {reached}, not the "
                             f"source ({source_id})", hint="something moved the application's endpoint: check it now")
        said.append(f"a write as {ep.user} through {ep.host}:{ep.port} landed on the source")
        points = self.cutover_repointer.points_to(*m.source_address)
        if points is False:
            raise StepFailed(f"the application's endpoint ({m.pb.cutover.repoint.method}) no longer points at the "
                             "source", hint="point it back at the source now")
        said.append("the application's endpoint points at the source" if points else
                    f"the application's endpoint cannot be read back ({m.pb.cutover.repoint.method}); its write "
                    "reached the source")
        with m.target() as t:
            status = replication.read_status(t)
            read_only = bool(t.variable("read_only"))
        link = m.forward_link
        if not (status.healthy and (status.source_host, status.source_port) == (link.host, link.port) and read_only):
            raise StepFailed(f"the target is no longer a healthy read-only replica of the source: IO "
                             f"{status.io_state}, SQL {'running' if status.sql_running else 'stopped'}, from "
                             f"{status.source_host}:{status.source_port}, read_only {read_only}",
                             hint=replication.hint_for(status))
        said.append("the target is a healthy read-only replica of the source")
        return "; ".join(said)


class Cleanup(RehearsalStep):
    name = "cleanup"
    timeout_s = 120.0

    def __init__(self, m: Migration, sw: Switch, drill: DrillAccount):
        super().__init__(m, sw)
        self.drill = drill

    def describe(self) -> str:
        after = ("forget replication on the rehearsal server, point its endpoint back at the source and stop it "
                 "(rehearsal.teardown)" if self.m.rehearsal.teardown else
                 "leave the rehearsal server promoted for inspection (the next rehearse seeds it again)")
        return f"drop the drill account on the source; {after}"

    def run(self, ctx: RunContext) -> str:
        said = [self.drill.drop()]
        if self.m.rehearsal.teardown:
            said.append(teardown(self.m, self.sw))
        else:
            said.append("rehearsal server left promoted for inspection; the next rehearse seeds it again")
        return "; ".join(said)


def teardown(m: Migration, sw: Switch) -> str:
    with sw.new.session() as s:
        replication.forget(s)
    sw.new.close()
    if sw.repointer.points_to(*sw.old.address) is not True:
        sw.repointer.point_to(*sw.old.address)
    result = m.rehearsal_host.run(m.rehearsal.service.stop, timeout=300, check=False)
    if not result.ok:
        log.get().warning("the rehearsal server did not stop", exit_status=result.exit_status)
        return f"rehearsal server reset, its endpoint back on the source; stopping it failed ({result.exit_status})"
    return "rehearsal server reset and stopped, its endpoint back on the source"
