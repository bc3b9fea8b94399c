"""Checks of what the seed method and the cutover will need: accounts, write block, repoint, probe."""

from __future__ import annotations

from migrate.capabilities import grants, heartbeat_event, inspector
from migrate.capabilities.repoint.base import Caution
from migrate.capabilities.seed import logical
from migrate.checks import Check, fail, listing, passed, skipped, warn
from migrate.checks.facts import PlanFacts
from migrate.errors import MigrateError


def checks(f: PlanFacts) -> list[Check]:
    return [_seed_method(f), _seed_names(f), _app_accounts(f), _write_block(f), _repoint(f), _probe(f), _heartbeat(f),
            _rehearsal(f)]


def unusual_names(f: PlanFacts) -> list[str]:
    """What mydumper cannot carry among the source's schema and table names."""
    s = f.source
    return logical.mydumper_cannot(s.schemas, [(t["schema"], t["name"]) for t in s.tables]) if s else []


def dump_tool(f: PlanFacts) -> str:
    """The tool a logical seed will use (what `start` picks, from the host's tools and the names)."""
    has_mydumper = {"mydumper", "myloader"} <= {k for k, v in f.host.tools.items() if v}
    try:
        return logical.pick_tool(f.pb.seed.tool, has_mydumper, unusual_names(f))
    except MigrateError:
        return "mydumper"  # refused: seed.names says why


def _seed_names(f: PlanFacts) -> Check:
    if f.pb.seed.method == "physical":
        return passed("seed.names", "a physical copy carries every name")
    if f.source is None:
        return skipped("seed.names", "source")
    cannot = unusual_names(f)
    if not cannot:
        return passed("seed.names", "the dump tools carry every schema and table name")
    if f.pb.seed.tool == "mydumper":
        return fail("seed.names", f"seed.tool is mydumper, which cannot carry {listing(cannot)}",
                    "set seed.tool: auto (migrate then uses mysqldump), or rename those objects")
    return passed("seed.names", f"the seed uses mysqldump: mydumper 0.10 cannot carry {listing(cannot)}")


def _seed_method(f: PlanFacts) -> Check:
    method = f.pb.seed.method
    if method == "physical" and f.pb.source.kind == "rds":
        return fail("seed.method", "seed.method is physical, but no physical copy can be taken out of RDS "
                    "(xtrabackup and mariadb-backup need the datadir)", "set seed.method: dump")
    if method == "physical":
        if f.pb.source.ssh is None or f.pb.source.datadir is None:
            return fail("seed.method", "seed.method physical needs source.ssh and source.datadir",
                        "set them, or use seed.method: dump")
        return warn("seed.method", "physical copy: the target gets the source's datadir, its accounts included",
                    "make sure target.user exists on the source with the same password")
    mydumper = dump_tool(f) == "mydumper"
    mysql_without_lock = f.source is not None and not f.source.dialect.is_mariadb and not \
        inspector.global_lock_allowed(f.source.privileges, rds=f.pb.source.kind == "rds")
    if f.host.reachable and not mydumper and mysql_without_lock:
        return fail("seed.method", "only mysqldump would seed, and on MySQL it needs FLUSH TABLES WITH READ LOCK "
                    "(RELOAD) for its coordinates, which this source refuses",
                    "install mydumper on the target host (it locks each table instead)")
    return passed("seed.method", "logical dump and load on the target host"
                  + (" (the only way out of RDS)" if f.pb.source.kind == "rds" else ""))


def _app_accounts(f: PlanFacts) -> Check:
    users = f.pb.cutover.app_users
    if not users:
        return fail("cutover.app_accounts", "cutover.app_users is empty: the write block would block nothing",
                    "list the application's accounts in cutover.app_users")
    if f.source is None:
        return skipped("cutover.app_accounts", "source")
    found = {a.user for a in f.source.app_accounts}
    missing = [u for u in users if u not in found]
    if missing:
        return fail("cutover.app_accounts", f"account(s) {listing(missing)} do not exist on the source",
                    "fix cutover.app_users")
    roles, writers, readers = [], [], []
    for account, lines in f.source.app_grants.items():
        writes = []
        for line in lines:
            try:
                g = grants.parse(line)
            except grants.RoleGrantFound:
                roles.append(account)
                continue
            if g:
                writes += g.write_privileges()
        (writers if writes else readers).append(f"{account} ({', '.join(sorted(set(writes)))})" if writes else account)
    if roles:
        return fail("cutover.app_accounts", f"{listing(roles)} hold roles: revoking the accounts' own grants would "
                    "not block their writes", "grant the role's privileges directly, for the window")
    if readers:
        return warn("cutover.app_accounts", f"no write privilege to revoke for {listing(readers)}",
                    "remove read-only accounts from cutover.app_users, or check their grants")
    return passed("cutover.app_accounts", f"the write block will revoke: {listing(writers)}")


def _write_block(f: PlanFacts) -> Check:
    method, said = f.pb.cutover.write_block, f.extra.get("write_block")
    if said is None:
        return skipped("cutover.write_block", "source")
    ok, text = said
    if not ok:
        return fail("cutover.write_block", f"{method}: {text}", "fix what the line above names, or choose another "
                    "cutover.write_block")
    if method == "parameter_group":
        return warn("cutover.write_block", f"{method}: {text}", "the cutover's block waits until AWS has applied "
                    "read_only (the application writes meanwhile: the cutover takes longer, its write downtime does "
                    "not), but a rollback waits for AWS to apply it back with writes blocked: that latency is write "
                    "downtime there; the rehearsal (which blocks only a drill account) cannot time it; budget "
                    "cutover.timeout_s for it")
    return passed("cutover.write_block", f"{method}: {text}")


def _repoint(f: PlanFacts) -> Check:
    ok, text = f.repoint
    if not ok:
        return fail("cutover.repoint", text, "fix cutover.repoint so the check above passes")
    src, tgt = f.pb.source, f.pb.target
    if f.pb.cutover.repoint.method == "route53" and tgt.port != src.port:
        return fail("cutover.repoint", f"a route53 record carries no port: the application keeps connecting to port "
                    f"{src.port}, but the target listens on {tgt.port}",
                    f"make the target listen on port {src.port}, or repoint with haproxy, ssh_file or command")
    if isinstance(text, Caution):
        return warn("cutover.repoint", text, "lower the record's TTL to 5 s or less a TTL ahead of the window, and "
                    "keep cutover.write_block killing the application's sessions")
    return passed("cutover.repoint", text)


def _probe(f: PlanFacts) -> Check:
    if f.probe is None:
        return warn("cutover.probe", "probe disabled: the cutover's write downtime will not be measured",
                    "set probe.enabled: true with an application account's password source")
    if f.source is None:  # the probe writes to the source: its login fails for the same reason
        return skipped("cutover.probe", "source")
    status, text, fix = f.probe
    return {"pass": lambda: passed("cutover.probe", text), "warn": lambda: warn("cutover.probe", text, fix),
            "fail": lambda: fail("cutover.probe", text, fix)}[status]()


def _heartbeat(f: PlanFacts) -> Check:
    """Which heartbeat writer is in use: lag is read from it (status, the gates) only while one writes."""
    found = f.extra.get("heartbeat")
    if found is None:
        return skipped("cutover.heartbeat", "source")
    running, said, event = found
    if f.pb.heartbeat.event and not event["scheduler_on"]:
        return fail("cutover.heartbeat", "heartbeat.event is on but the source's event scheduler is off: the event "
                    "would never run", "RDS: event_scheduler = ON in the DB parameter group; self-managed: SET "
                    "GLOBAL event_scheduler = ON (and in my.cnf); or heartbeat.event: false and `migrate heartbeat`")
    if not f.pb.heartbeat.event and event["status"] == "ENABLED":
        return warn("cutover.heartbeat", f"heartbeat: {said}; {heartbeat_event.FULL_NAME} (installed by an earlier "
                    "start) runs on the source though heartbeat.event is off: the cutover's gates refuse while it "
                    "does", "rerun `migrate start -p PLAYBOOK` (it drops the event), or set heartbeat.event: true")
    if running is None:
        return passed("cutover.heartbeat", f"heartbeat: {said}")
    if running:
        return passed("cutover.heartbeat", f"heartbeat: {said}; status and the cutover's gates read lag from it")
    return warn("cutover.heartbeat", f"heartbeat: {said}; until one runs, `migrate status` shows the server's "
                "figure and the position only (status --watch and the cutover's gates write their own while they "
                "run)", "run `migrate heartbeat -p PLAYBOOK` beside the state directory, under systemd "
                "(playbooks/migrate-heartbeat.service) or tmux")


def _rehearsal(f: PlanFacts) -> Check:
    r, facts = f.pb.rehearsal, f.extra.get("rehearsal")
    if r is None or facts is None:
        return warn("rehearsal", "no rehearsal: section: the cutover cannot be rehearsed (`migrate rehearse`), so "
                    "its write downtime is an estimate, not a prediction from your own servers",
                    "add a rehearsal: section (playbooks/rds-to-ec2.yml shows one) and rehearse before the window")
    ok, said = facts["repoint"]
    if not ok:
        return fail("rehearsal", f"the rehearsal's own repoint ({r.repoint.method}) cannot act: {said}",
                    "fix rehearsal.repoint so the check above passes")
    tool = "mariadb-backup" if f.target is None or f.target.dialect.is_mariadb else "xtrabackup"
    if r.seed == "clone_target" and f.host.reachable and not f.host.tools.get(tool):
        return fail("rehearsal", f"rehearsal.seed clone_target copies the target with {tool}, which is not installed "
                    "on the target host", f"install {tool} on the target host (and the rehearsal host)")
    latest = facts["latest"]
    done = (f"latest rehearsal {latest['rehearsal_run']} ({latest['rehearsed_at']}) predicted "
            f"{latest['write_downtime_ms']:.0f} ms" if latest else "not rehearsed yet: `migrate rehearse` before "
            "the window")
    return passed("rehearsal", f"{r.host}:{r.port} seeded by {r.seed}; its endpoint: {said}; {done}")
