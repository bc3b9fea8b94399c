"""`migrate plan`: preflight checks, the ordered plan with estimates, and a go / no-go.

Read-only by construction: facts come from the inspectors over read-only sessions (which refuse any
statement that is not a read), AWS describe calls, and read-only commands on the target host.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from migrate.adapters.db import connect
from migrate.capabilities import (
    grants,
    heartbeat,
    heartbeat_event,
    host_inspector,
    inspector,
    phase,
    rds_inspector,
    replication,
    report,
)
from migrate.capabilities.inspector import SERVICE_ACCOUNTS
from migrate.capabilities.migration import Migration
from migrate.capabilities.replication import SERVICE_TABLES
from migrate.capabilities.repoint import for_migration
from migrate.capabilities.seed.consistency import choose as choose_consistency
from migrate.checks import Check, fail, passed, warn
from migrate.checks import cutover as cutover_checks
from migrate.checks import link as link_checks
from migrate.checks import rds as rds_checks
from migrate.checks import source as source_checks
from migrate.checks import target as target_checks
from migrate.checks.facts import PlanFacts, SourceFacts, TargetFacts
from migrate.errors import MigrateError, Refused
from migrate.estimates import estimate
from migrate.steps import start as start_steps


def run(m: Migration, *, allow_nonempty_target: bool = False) -> dict[str, Any]:
    try:
        facts = gather(m)
    finally:
        m.close()
    est = estimate(facts.source.data_bytes if facts.source else 0,
                   facts.source.binlog_bytes_per_s if facts.source else 0.0, m.pb.estimates, m.pb.cutover.stable_for_s,
                   report.latest_prediction(m.pb.run_dir))
    checks = [_phase(m), *source_checks.checks(facts, est), *rds_checks.checks(facts),
              *target_checks.checks(facts, est, allow_nonempty=allow_nonempty_target), *link_checks.checks(facts),
              *cutover_checks.checks(facts)]
    if est.catch_up_s is None:
        checks.append(fail(
            "estimate.catch_up", f"the source writes {est.binlog_mb_per_s:.2f} MB/s of binlog, faster than the "
            f"replica applies ({est.apply_mb_per_s:.2f} MB/s): it would never catch up",
            "seed when the write load is lower, or measure your own apply rate (estimates.apply_mb_per_s)"))
    failed = [c.id for c in checks if c.status == "fail"]
    return {"name": m.pb.name, "checks": [c.as_dict() for c in checks], "plan": _plan(m, facts),
            "estimates": est.as_dict(), "verdict": "no-go" if failed else "go", "failed": failed}


def _phase(m: Migration) -> Check:
    """Where the migration stands (read from its state file): the checks describe a migration not yet switched."""
    now = phase.read(m.store.load_state())
    said = phase.sentence(now)
    if now.phase in ("new", "seeding", "replicating", "rolled_back"):
        return passed("migration.phase", said)
    if now.phase == "cut_over":
        return warn("migration.phase", f"{said}: the checks below describe the way from the source to the "
                    "target, which is done", f"`migrate status -p {m.path}`; the way back: `migrate rollback -p "
                    f"{m.path} --dry-run`")
    return fail("migration.phase", said, f"`migrate status -p {m.path}` says how to finish or undo it")


# -- facts --------------------------------------------------------------------------------------------


def gather(m: Migration) -> PlanFacts:
    pb = m.pb
    source, source_error = _try(lambda: _source(m))
    target, target_error = _try(lambda: _target(m))
    host_address, host_port = m.source_host_for_target if source else (pb.source.host or "?", pb.source.port)
    host = host_inspector.inspect(m.target_host, datadir=str(pb.target.datadir), source_host=host_address,
                                  source_port=host_port)
    rds = rds_inspector.inspect(pb.aws, pb.source.rds_instance_id) if pb.source.kind == "rds" else None
    return PlanFacts(pb, source, source_error, target, target_error, host, rds, _repoint(m), _probe(m),
                     extra={"source_for_target": f"{host_address}:{host_port}", "rehearsal": _rehearsal(m),
                            "seeded_schemas": _seeded(m), "write_block": _write_block(m) if source else None,
                            "heartbeat": _try(lambda: _heartbeat(m))[0] if source else None,
                            "target_address": f"{pb.target.host}:{pb.target.port}",
                            "replication_password_length": len(m.replication_password.get_secret_value()),
                            "replication_login": _replication_login(m) if source and source.repl_grants is not None
                            else None})


def _replication_login(m: Migration) -> str:
    """"ok", or why the existing replication account cannot log in on the source as `start` will (its password,
    the source's TLS settings)."""
    ep = replace(m.source_endpoint(), user=m.pb.replication.user, password=m.replication_password)
    return replication.login_works(ep) or "ok"


def _try(fn):
    try:
        return fn(), None
    except MigrateError as exc:
        return None, str(exc)


def _source(m: Migration) -> SourceFacts:
    with m.source(read_only=True) as s:
        schemas = inspector.schemas_to_copy(s, m.pb.seed.databases)
        app = inspector.accounts_of(s, m.pb.cutover.app_users)
        definers = [a for a in inspector.definers(s, schemas) if a.user not in SERVICE_ACCOUNTS]
        existing = set(inspector.accounts_of(s, sorted({a.user for a in definers})))
        repl = inspector.accounts_of(s, [m.pb.replication.user])
        repl_account = next((a for a in repl if a.host == "%"), None)
        variables = inspector.variables(s)
        binlog_on = str(variables.get("log_bin", "")).upper() in ("ON", "1")
        return SourceFacts(
            dialect=s.dialect,
            variables=variables, privileges=inspector.global_privileges(s), schemas=schemas,
            tables=inspector.tables(s, schemas), no_primary_key=inspector.tables_without_primary_key(s, schemas),
            long_transactions=inspector.long_transactions(s), code=inspector.code_objects(s, schemas),
            collations=inspector.collations_in_use(s, schemas), app_accounts=app,
            app_grants={str(a): inspector.grants_of(s, a) for a in app},
            repl_grants=inspector.login_grants(s, repl_account) if repl_account else None,
            definers=definers, missing_definers=[a for a in definers if a not in existing],
            rds_configuration=inspector.rds_configuration(s) if m.pb.source.kind == "rds" else None,
            binlog_bytes_per_s=inspector.binlog_write_rate(s, m.pb.estimates.binlog_sample_s) if binlog_on else 0.0,
            unix_time=inspector.unix_time(s),
            missing_databases=sorted(set(m.pb.seed.databases or []) - set(inspector.user_schemas(s))),
            replicates_from=inspector.replication_sources(s), gtid=inspector.gtid_history(s),
            proxy_grantees=[str(a) for a in inspector.proxy_grantees(s)],
            **_accounts(s, m, schemas))


def _accounts(s, m: Migration, schemas: list[str]) -> dict:
    try:
        chosen = start_steps.selection(s, m, schemas)
    except Refused:  # an application account is missing: cutover.app_accounts says which
        return {}
    return {"carried_accounts": [str(a) for a in chosen.all], "skipped_accounts": chosen.skipped}


def _target(m: Migration) -> TargetFacts:
    with m.target(read_only=True) as t:
        own = inspector.own_grants(t)
        return TargetFacts(t.dialect, inspector.variables(t), inspector.user_schemas(t),
                           inspector.collations_supported(t), inspector.unix_time(t),
                           replicates_from=inspector.replication_sources(t),
                           filters=inspector.replication_filters(t), privileges=grants.global_privileges(own),
                           may_grant_proxy=grants.may_grant_proxy(own),
                           accounts={str(inspector.Account(r["user"], r["host"])) for r in t.run(t.dialect.accounts())},
                           gtid=inspector.gtid_history(t))


def _seeded(m: Migration) -> list[str]:
    """The schemas this migration's `start` copied to the target (none before it began)."""
    data = m.store.load_state().get("data", {})
    return list(data.get("seed", {}).get("schemas") or data.get("seed_started") or [])


def _rehearsal(m: Migration) -> dict[str, Any] | None:
    """The rehearsal's own repoint can act (read-only), and the latest finished rehearsal, if any."""
    if m.pb.rehearsal is None:
        return None
    try:
        repoint = True, for_migration(m.pb, m.pb.rehearsal.repoint).check()
    except MigrateError as exc:
        repoint = False, exc.message
    return {"repoint": repoint, "latest": report.latest_prediction(m.pb.run_dir)}


def _write_block(m: Migration) -> tuple[bool, str]:
    """Whether the cutover's write block would be allowed on the source (the blocker's own read-only check)."""
    from migrate.workflows.switch import blocker

    try:
        with m.source(read_only=True) as s:
            return True, blocker(m, m.server("source")).check(s)
    except MigrateError as exc:
        return False, exc.message


def _heartbeat(m: Migration) -> tuple[bool | None, str, dict]:
    """(a writer runs?, which, the source's heartbeat event: `scheduler_on`, `status`); None: none is needed yet
    (nothing replicates before `migrate start`)."""
    with m.source(read_only=True) as s:
        running, said = heartbeat.in_use(s)
        found = heartbeat_event.read(s)
        event = {"scheduler_on": heartbeat_event.scheduler_on(s), "status": found["status"] if found else None}
    if not running and phase.read(m.store.load_state()).phase in ("new", "seeding"):
        then = "`migrate start` installs the heartbeat event" if m.pb.heartbeat.event else \
            "start `migrate heartbeat` once `migrate start` is done"
        return None, f"{said}; {then}", event
    return running, said, event


def _repoint(m: Migration) -> tuple[bool, str]:
    try:
        return True, for_migration(m.pb).check()
    except MigrateError as exc:
        return False, exc.message


def _probe(m: Migration) -> tuple[str, str, str | None] | None:
    """(status, evidence, fix) of the probe: it logs in, it may write the tool's schema (or `start` will grant
    it), and the repoint moves its endpoint."""
    if not m.pb.probe.enabled:
        return None
    from migrate.workflows.switch import app_endpoint

    try:
        app = app_endpoint(m)
        ep = app()
        with connect(ep, attempts=1, connect_timeout=5, read_only=True) as s:
            s.value("SELECT 1")
        with m.source(read_only=True) as s:
            account = inspector.accounts_of(s, [ep.user])
            exists = inspector.table_exists(s, inspector.TOOL_SCHEMA, "probe")
            may_write = bool(account) and exists and inspector.has_grant_on(s, account[0], inspector.TOOL_SCHEMA)
    except MigrateError as exc:
        return "fail", f"the probe cannot log in: {exc.message}", "give probe.user a password source that logs in"
    if not account:
        return ("fail", f"the probe's account {ep.user} does not exist on the source (it logs in at "
                f"{ep.host}:{ep.port} as another account)", "set probe.user to an application account")
    if exists and not may_write:
        return ("fail", f"the probe's account {account[0]} cannot write {inspector.TOOL_SCHEMA}.probe on the source",
                f"rerun `migrate start -p {m.path}`: it grants INSERT and SELECT on {inspector.TOOL_SCHEMA} to "
                "probe.user")
    said = f"the probe logs in as {ep.user} at {ep.host}:{ep.port}" + (
        "" if exists else f"; `migrate start` grants it INSERT on {inspector.TOOL_SCHEMA}")
    if app.fixed:
        try:
            carried = for_migration(m.pb).carries(ep)
        except MigrateError as exc:
            carried, said = None, f"{said}; could not tell whether the repoint moves it: {exc.message}"
        if carried is False or app.fixed == m.source_address:
            return ("warn", f"{said}, but probe.host/port ({ep.host}:{ep.port}) does not go through what the "
                    "repoint moves: the cutover's gates will refuse", "set probe.host/port to the application's "
                    "endpoint, or leave them unset so the probe follows the repoint")
        if carried is None:
            return ("warn", f"{said}; probe.host/port is fixed and a {m.pb.cutover.repoint.method} repoint cannot be "
                    "read back: if it does not move that endpoint, the post-check fails after the point of no "
                    "return", "make sure the repoint moves probe.host/port, or leave them unset so the probe "
                    "follows the repoint")
    return "pass", said, None


# -- the plan -----------------------------------------------------------------------------------------


def _plan(m: Migration, facts: PlanFacts) -> dict[str, Any]:
    seed = _seed_choice(m, facts)
    start = [{"step": s.name, "does": s.describe()} for s in start_steps.steps(m)]
    from migrate.workflows import switch

    try:
        cutover = [{k: s[k] for k in ("step", "does", "point_of_no_return")} for s in switch.plan(m, "cutover")]
    except MigrateError as exc:
        cutover = [{"step": "repoint", "does": f"cannot be planned: {exc.message}", "point_of_no_return": True}]
    return {"seed": seed, "start": start, "cutover": cutover,
            "replication_filters": {"replicate_wild_ignore_table": SERVICE_TABLES}}


def _seed_choice(m: Migration, facts: PlanFacts) -> dict[str, str]:
    if m.pb.seed.method == "physical":
        if m.pb.source.kind == "rds":
            return {"method": "physical", "tool": "none", "consistency": "none",
                    "why": "impossible from RDS: a physical copy needs the datadir, which RDS does not expose"}
        tool = "mariadb-backup" if facts.source and facts.source.dialect.is_mariadb else "xtrabackup"
        return {"method": "physical", "tool": tool, "consistency": "backup",
                "why": f"{tool} streamed from the source host to the target host (the target host pulls it over "
                       "SSH), prepared, moved into the datadir; replication from the backup's coordinates"}
    tool = cutover_checks.dump_tool(facts)
    lock = bool(facts.source) and inspector.global_lock_allowed(facts.source.privileges,
                                                                rds=m.pb.source.kind == "rds")
    try:
        consistency, why = choose_consistency(m.pb, lock)
    except MigrateError as exc:
        return {"method": "dump", "tool": tool, "consistency": "none", "why": exc.message}
    if consistency == "replica":
        how = ("a temporary RDS read replica, its replication stopped with mysql.rds_stop_replication: the dump "
               "reads it at the primary's coordinates it stopped at, without any lock on the primary")
    elif tool == "mydumper":
        how = "FLUSH TABLES WITH READ LOCK while the dump threads start" if lock else \
            "LOCK TABLES ... READ on every dumped table while the dump threads start (the global lock is refused here)"
    elif facts.source and facts.source.dialect.is_mariadb:
        how = "--single-transaction; MariaDB gives the snapshot's own binlog position, no lock"
    else:
        how = "--single-transaction with FLUSH TABLES WITH READ LOCK for the coordinates (needs RELOAD)"
    return {"method": "dump", "tool": tool, "consistency": consistency,
            "why": f"{tool} on the target host, consistency by {how} ({why}); data flows to the target host only"}
