"""Checks of the target server and its host, and of the network between target and source."""

from __future__ import annotations

from migrate.capabilities.inspector import TOOL_SCHEMA
from migrate.capabilities.replication import SERVICE_TABLES
from migrate.checks import Check, fail, listing, on, passed, skipped, warn
from migrate.checks.facts import PlanFacts
from migrate.estimates import Estimate

DISK_FACTOR = 1.5
MAX_SKEW_S = 1.0


def checks(f: PlanFacts, est: Estimate, *, allow_nonempty: bool) -> list[Check]:
    out: list[Check] = []
    t = f.target
    if t is None:
        out.append(fail("target.connect", f"cannot read the target: {f.target_error}",
                        "check target.host/port/user and the password source"))
    else:
        out += [_version(f), _server_id(f), *_binlog(f), _read_only(f), _empty(f, allow_nonempty), _settings(f),
                _collations(f), _parallel_apply(f), _other_sources(f), _filters(f), _user_privileges(f),
                _forced_primary_key(f), _definers(f)]
    out += _host(f, est)
    return out


def _version(f: PlanFacts) -> Check:
    if f.source is None:
        return skipped("target.version", "source")
    src, tgt = f.source.dialect, f.target.dialect
    if src.flavor != tgt.flavor:
        return fail("target.version", f"source {src.name}, target {tgt.name}",
                    "use the source's flavor on the target: replication across MySQL and MariaDB is not supported "
                    "by migrate")
    if tgt.version[:2] < src.version[:2]:
        return fail("target.version", f"source {src.name} is newer than target {tgt.name}",
                    f"install {src.flavor} {src.version[0]}.{src.version[1]} or newer on the target")
    if tgt.version[:2] != src.version[:2]:
        return warn("target.version", f"source {src.name}, target {tgt.name} (newer major version)",
                    "a replica one major version newer is supported; rehearse the cutover and verify before the "
                    "window")
    return passed("target.version", f"{tgt.name} (source {src.name})")


def _server_id(f: PlanFacts) -> Check:
    sid = int(f.target.variables.get("server_id") or 0)
    if sid == 0:
        return fail("target.server_id", "server_id=0", "give the target a non-zero server_id different from the source's")
    return passed("target.server_id", f"server_id={sid}")


def _binlog(f: PlanFacts) -> list[Check]:
    """Reverse replication reads the target's binary log after the cutover: without it (turned off in the
    playbook) a missing binary log only costs the way back, a warning."""
    v = f.target.variables
    name = f.target.dialect.log_replica_updates_variable
    missing = fail if f.pb.cutover.reverse_replication else warn
    why = "reverse replication needs it" if f.pb.cutover.reverse_replication else \
        "cutover.reverse_replication is off, but without it there is no way back after the cutover"
    out = [passed("target.binary_log", "log_bin=ON") if on(v.get("log_bin")) else
           missing("target.binary_log", "log_bin=OFF", f"start the target with log_bin ({why})")]
    updates = v.get(name, v.get("log_slave_updates"))
    out.append(passed("target.log_replica_updates", f"{name}=ON") if on(updates) else
               missing("target.log_replica_updates", f"{name}={updates}",
                       f"start the target with {name}=ON ({why}; any later replica needs it too)"))
    return out


def _read_only(f: PlanFacts) -> Check:
    if on(f.target.variables.get("read_only")):
        return passed("target.read_only", "read_only=ON")
    return fail("target.read_only", "read_only=OFF: anything could write to the future replica",
                "SET GLOBAL read_only = ON; and read_only=ON in the target's configuration")


def _empty(f: PlanFacts, allow_nonempty: bool) -> Check:
    seeded = set(f.extra.get("seeded_schemas") or [])  # this migration's own seed (after `start`), and its schema
    own = seeded | {TOOL_SCHEMA} if seeded else set()
    schemas = [s for s in f.target.user_schemas if s not in own]
    if not schemas:
        return passed("target.empty", f"only this migration's seed: {listing(sorted(seeded))}" if seeded
                      else "no user databases")
    check = warn if allow_nonempty else fail
    return check("target.empty", f"user database(s) on the target: {listing(schemas)}",
                 "drop them, or pass --allow-nonempty-target if they are meant to stay (the seed replaces the "
                 "schemas it copies)")


def _settings(f: PlanFacts) -> Check:
    if f.source is None:
        return skipped("target.settings", "source")
    diffs, fatal = [], False
    for name in ("lower_case_table_names", "sql_mode", "time_zone", "max_allowed_packet"):
        a, b = f.source.variables.get(name), f.target.variables.get(name)
        if a is None or b is None or str(a) == str(b):
            continue
        if name == "max_allowed_packet" and int(b) >= int(a):
            continue
        if name == "time_zone" and str(a).upper() == "SYSTEM" and f.source.variables.get("system_time_zone") == \
                f.target.variables.get("system_time_zone"):
            continue
        diffs.append(f"{name}: source {a!s}, target {b!s}")
        fatal |= name == "lower_case_table_names"
    if not diffs:
        return passed("target.settings", "lower_case_table_names, sql_mode, time_zone and max_allowed_packet match")
    fix = "set the target's " + ", ".join(d.split(":")[0] for d in diffs) + " to the source's values"
    return (fail if fatal else warn)("target.settings", "; ".join(diffs), fix)


def _parallel_apply(f: PlanFacts) -> Check:
    """One applier thread commits one transaction at a time and falls behind a primary that groups its commits;
    what it has not applied when writes are blocked is write downtime (bench/cutover.py on the sandbox: cutover
    max 687 ms with one thread, under 100 ms with four)."""
    v = f.target.variables
    name = next((n for n in ("replica_parallel_workers", "slave_parallel_threads", "slave_parallel_workers")
                 if v.get(n) is not None), None)
    if name is None:
        return passed("target.parallel_apply", "the server does not report its applier threads")
    threads = int(v[name])
    if threads > 1:
        return passed("target.parallel_apply", f"{name}={threads}")
    fix = ("set slave_parallel_threads=4 and slave_parallel_mode=optimistic in the target's configuration (live: "
           "STOP SLAVE; SET GLOBAL ...; START SLAVE)" if f.target.dialect.flavor == "mariadb" else
           "set replica_parallel_workers=4 (the default since MySQL 8.0.27) with replica_preserve_commit_order=ON")
    return warn("target.parallel_apply", f"{name}={threads}: the target applies replicated transactions one at a "
                "time; under write load it lags in bursts, and what it has not applied when writes are blocked is "
                "added to the write downtime", fix)


def _other_sources(f: PlanFacts) -> Check:
    """A target already set up to replicate from another server (running or stopped) would apply that server's
    writes on top of the source's, or `start` would silently replace its configuration."""
    source = f.extra.get("source_for_target", "?")
    others = [r for r in f.target.replicates_from if not r.startswith(source + " ")]
    if others:
        return fail("target.other_sources", f"the target is configured to replicate from {listing(others)}",
                    "if that is not wanted: STOP SLAVE; RESET SLAVE ALL; on the target (STOP/RESET REPLICA on "
                    "MySQL 8, 'name' for a named connection), or point target at a fresh server")
    if f.target.replicates_from:
        return passed("target.other_sources", f"the target replicates from the source only ({source})")
    return passed("target.other_sources", "the target replicates from no server yet")


def _filters(f: PlanFacts) -> Check:
    own = {"replicate_wild_ignore_table": SERVICE_TABLES}
    stray = {k: v for k, v in f.target.filters.items() if own.get(k) != v}
    if stray:
        shown = "; ".join(f"{k}={v}" for k, v in sorted(stray.items()))
        return fail("target.replication_filters", f"replication filters are set on the target: {shown}: part of "
                    "the source's writes would never reach it", "remove them from the target's configuration and "
                    "restart it (or, with replication stopped, SET GLOBAL each to '')")
    return passed("target.replication_filters", f"start sets replicate_wild_ignore_table={SERVICE_TABLES} (the RDS "
                  "service's own tables; add it to the target's configuration so that a restart keeps it), and no "
                  "other filter")


def _user_privileges(f: PlanFacts) -> Check:
    user = f.pb.target.user
    missing = [name for name, gives in f.target.dialect.target_user_needs() if not gives & f.target.privileges]
    proxies = [a for a in (f.source.proxy_grantees if f.source else []) if a in (f.source.carried_accounts or [])]
    if proxies and not f.target.may_grant_proxy:
        missing.append(f"PROXY ON ''@'%' WITH GRANT OPTION (to carry the proxy grants of {listing(proxies)})")
    if missing:
        return fail("target.user_privileges", f"{user} lacks {', '.join(missing)} on *.*: start loads every "
                    "object, creates every account with its grants and configures replication; the cutover sets "
                    "read_only", f"on the target: GRANT ALL PRIVILEGES ON *.* TO '{user}'@'<its host>' WITH GRANT OPTION;"
                    + (f" GRANT PROXY ON ''@'%' TO '{user}'@'<its host>' WITH GRANT OPTION;" if proxies else ""))
    return passed("target.user_privileges", f"{user} may load, carry accounts, replicate and set read_only")


def _forced_primary_key(f: PlanFacts) -> Check:
    """A target that refuses tables without a primary key refuses the source's such tables at the load (and
    any created later, in replication)."""
    name = next((n for n in ("innodb_force_primary_key", "sql_require_primary_key") if on(f.target.variables.get(n))),
                None)
    if name is None:
        return passed("target.primary_key_required", "the target accepts tables without a primary key")
    if f.source is None:
        return skipped("target.primary_key_required", "source")
    if f.source.no_primary_key:
        return fail("target.primary_key_required", f"{name}=ON on the target refuses the source's "
                    f"{len(f.source.no_primary_key)} table(s) without a primary key: "
                    f"{listing(f.source.no_primary_key)}", f"add primary keys on the source, or SET GLOBAL {name}=OFF "
                    "on the target (and in its configuration) until they have one")
    return passed("target.primary_key_required", f"{name}=ON, and every table of the source has a primary key")


def _definers(f: PlanFacts) -> Check:
    """Views, routines, triggers and events run as their DEFINER: one missing on the target fails with 1449 there."""
    if f.source is None:
        return skipped("target.definers", "source")
    missing = [str(a) for a in f.source.definers if str(a) not in f.target.accounts]
    if not missing:
        return passed("target.definers", "every DEFINER of the source's objects exists on the target" if
                      f.source.definers else "no object of the source names a DEFINER")
    carried = set(f.source.carried_accounts or [])
    lost = [a for a in missing if a not in carried]
    if lost:
        return warn("target.definers", f"DEFINER(s) missing on the target and not carried by start: {listing(lost)}; "
                    "their views, routines, triggers and events would fail with 1449 there",
                    "create them on the target, or let start carry them (remove them from seed.skip_accounts; "
                    "a DEFINER missing on the source must be created there first)")
    return passed("target.definers", f"DEFINER(s) missing on the target, carried by start: {listing(missing)}")


def _collations(f: PlanFacts) -> Check:
    if f.source is None:
        return skipped("target.collations", "source")
    missing = [c for c in f.source.collations if c not in f.target.collations]
    used = listing(f.source.collations)
    if missing:
        return fail("target.collations", f"collations used on the source but unknown on the target: {listing(missing)}",
                    "convert those columns on the source, or use a target version that knows them")
    return passed("target.collations", f"every collation in use is known on the target ({used})")


def _host(f: PlanFacts, est: Estimate) -> list[Check]:
    h = f.host
    if not h.reachable:
        return [fail("target.host", f"cannot run commands on the target host: {h.error}",
                     "check target.ssh (host, port, user, key_file, known_hosts)")]
    out = [passed("target.host", "commands run on the target host")]
    need = int(est.data_mb * 1e6 * DISK_FACTOR)
    if h.free_bytes is None:
        out.append(warn("target.disk", "free space on the datadir's filesystem could not be read", "check df there"))
    elif h.free_bytes < need:
        out.append(fail("target.disk", f"{h.free_bytes / 1e9:,.1f} GB free at {h.disk_path}, the seed needs "
                        f"{need / 1e9:,.1f} GB ({DISK_FACTOR}x the source's {est.data_mb:,.0f} MB)",
                        f"grow the volume holding {f.pb.target.datadir}"))
    else:
        out.append(passed("target.disk", f"{h.free_bytes / 1e9:,.1f} GB free at {h.disk_path} "
                          f"(needs {need / 1e9:,.2f} GB)"))
    out.append(_tools(f))
    if h.source_tcp is None:
        out.append(passed("network.target_to_source", "the target host opened a TCP connection to the source's MySQL port"))
    else:
        out.append(fail("network.target_to_source", f"the target host cannot reach the source: {h.source_tcp}",
                        "allow the target's address into the source's security group on the MySQL port, and check "
                        "replication.source_host"))
    out.append(_clock(f))
    return out


def _tools(f: PlanFacts) -> Check:
    tools = {k for k, v in f.host.tools.items() if v}
    if f.pb.seed.method == "physical":
        wanted = "mariadb-backup" if f.source and f.source.dialect.is_mariadb else "xtrabackup"
        return passed("target.tools", f"{wanted} present") if wanted in tools else \
            fail("target.tools", f"{wanted} is missing on the target host", f"install {wanted} on the target host")
    if {"mydumper", "myloader"} <= tools:
        return passed("target.tools", "mydumper and myloader present (the seed uses them)")
    if ({"mariadb-dump", "mariadb"} <= tools) or ({"mysqldump", "mysql"} <= tools):
        return warn("target.tools", "only mysqldump is present: the seed is single-threaded",
                    "install mydumper on the target host for a faster seed")
    return fail("target.tools", "neither mydumper/myloader nor mysqldump/mysql on the target host",
                "install mydumper (or the MySQL client tools) on the target host")


def _clock(f: PlanFacts) -> Check:
    if f.source is None or f.target is None:
        return skipped("network.clock_skew", "source" if f.source is None else "target")
    skew = abs(f.source.unix_time - f.target.unix_time)
    if skew > MAX_SKEW_S:
        return warn("network.clock_skew", f"source and target clocks differ by {skew:.2f} s",
                    "run chrony/NTP on the target host: lag figures and timestamps compare clocks")
    return passed("network.clock_skew", f"source and target clocks within {skew * 1000:.0f} ms")
