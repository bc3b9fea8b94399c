"""Checks of the source server."""

from __future__ import annotations

from migrate.capabilities import inspector
from migrate.capabilities.inspector import TOOL_SCHEMA
from migrate.checks import Check, fail, listing, on, passed, warn
from migrate.checks.facts import PlanFacts, SourceFacts
from migrate.estimates import Estimate

SUPPORTED = {"mysql": (5, 7, 0), "mariadb": (10, 5, 0)}
MB = 1e6


def checks(f: PlanFacts, est: Estimate) -> list[Check]:
    s = f.source
    if s is None:
        return [fail("source.connect", f"cannot read the source: {f.source_error}",
                     "check source.host/port/user and the password source, and that this machine may connect")]
    rds = f.pb.source.kind == "rds"
    return [_version(s), _databases(s, f), *_binlog(s, rds), _retention(s, rds, est), _gtid(s), _server_id(s, f),
            _replication_account(s, f), _own_replication(s, f), _logs_what_it_applies(s, f), _primary_keys(s),
            _engines(s), _long_transactions(s), _size(s),
            _code_objects(s), _definers(s), _accounts(s, f)]


def _version(s: SourceFacts) -> Check:
    d = s.dialect
    if d.version < SUPPORTED[d.flavor]:
        return fail("source.version", f"{d.name}", f"{d.flavor} before {'.'.join(map(str, SUPPORTED[d.flavor]))} "
                    "is not supported: upgrade the source first")
    return passed("source.version", d.name)


def _databases(s: SourceFacts, f: PlanFacts) -> Check:
    if s.missing_databases:
        return fail("source.databases", f"seed.databases names database(s) the source does not have: "
                    f"{listing(s.missing_databases)}", "fix seed.databases (names are compared exactly, case included)")
    user = [name for name in s.schemas if name != TOOL_SCHEMA]
    if not user:
        return fail("source.databases", "the source holds no user database: nothing to migrate",
                    "point source at the server that holds the application's data")
    return passed("source.databases", f"{len(user)} database(s) to copy: {listing(user)}")


def _binlog(s: SourceFacts, rds: bool) -> list[Check]:
    v = s.variables
    out = []
    if not on(v.get("log_bin")):
        out.append(fail("source.binary_log", "log_bin=OFF",
                        "RDS: turn automated backups on (backup retention >= 1 day) — binary logging follows"
                        if rds else "start the source with log_bin and a server_id"))
    else:
        out.append(passed("source.binary_log", "log_bin=ON"))
    fmt = str(v.get("binlog_format", "")).upper()
    fix_fmt = ("set binlog_format=ROW in the instance's custom DB parameter group (apply immediately)" if rds
               else "SET GLOBAL binlog_format='ROW' and put binlog_format=ROW in the server's configuration")
    out.append(binlog_format_check("source.binlog_format", fmt, f"binlog_format={fmt or '?'}", fix_fmt))
    image = str(v.get("binlog_row_image", "FULL")).upper()
    out.append(passed("source.binlog_row_image", f"binlog_row_image={image}") if image == "FULL"
               else fail("source.binlog_row_image", f"binlog_row_image={image}",
                         "set binlog_row_image=FULL (parameter group on RDS)"))
    return out


def binlog_format_check(id: str, fmt: str, said: str, fix: str) -> Check:
    """What migrate's replication needs of the format: it is the servers' own (native) replication, which
    replays statements as well as rows. MIXED logs as rows what is unsafe to replay, so only STATEMENT can
    leave the copy different (a row-based tool would need ROW)."""
    if fmt == "ROW":
        return passed(id, said)
    if fmt == "MIXED":
        return passed(id, f"{said}: native replication replays it (statements unsafe to replay are logged as rows)")
    return warn(id, f"{said}: the replica replays every statement as written; a non-deterministic one (UUID(), "
                "LIMIT without ORDER BY, NOW() in a trigger...) can leave the copy different from the source",
                fix + " (MIXED is enough)")


def _retention(s: SourceFacts, rds: bool, est: Estimate) -> Check:
    need_h = est.retention_needed_h
    if rds:
        hours = inspector.rds_retention_hours(s.rds_configuration)
        fix = f"CALL mysql.rds_set_configuration('binlog retention hours', {max(24, need_h)});"
        if hours is None:
            return fail("source.binlog_retention", "binlog retention hours = NULL: RDS purges binlogs almost at once",
                        fix + " (migrate start sets 24 h when unset; the plan needs at least "
                              f"{need_h} h for seed + catch-up)")
        if hours < need_h:
            return fail("source.binlog_retention", f"binlog retention hours = {hours}, estimated seed + catch-up "
                        f"needs {need_h} h", fix)
        return passed("source.binlog_retention", f"binlog retention hours = {hours} (needs {need_h})")
    seconds = inspector.expire_seconds(s.variables)
    if seconds and seconds < need_h * 3600:
        return fail("source.binlog_retention", f"binlogs expire after {seconds / 3600:.1f} h, estimated seed + "
                    f"catch-up needs {need_h} h", f"SET GLOBAL binlog_expire_logs_seconds = {max(24, need_h) * 3600};")
    return passed("source.binlog_retention", "binlogs never expire" if not seconds else
                  f"binlogs expire after {seconds / 3600:.0f} h (needs {need_h})")


def _gtid(s: SourceFacts) -> Check:
    if s.dialect.is_mariadb:
        return passed("source.gtid", f"MariaDB GTID always on (domain {s.variables.get('gtid_domain_id', 0)}); "
                                     "replication uses MASTER_USE_GTID=slave_pos")
    if on(s.variables.get("gtid_mode")):
        return passed("source.gtid", "gtid_mode=ON: GTID auto-position")
    return warn("source.gtid", f"gtid_mode={s.variables.get('gtid_mode', 'OFF')}: replication will use file/position",
                "optional: turn GTIDs on (gtid_mode ON, enforce_gtid_consistency ON) for position-independent "
                "replication")


def _server_id(s: SourceFacts, f: PlanFacts) -> Check:
    sid = int(s.variables.get("server_id") or 0)
    if sid == 0:
        return fail("source.server_id", "server_id=0", "give the source a non-zero server_id")
    if f.target and int(f.target.variables.get("server_id") or 0) == sid:
        return fail("source.server_id", f"source and target both have server_id={sid}",
                    "give the target another server_id (server_id in its configuration, then restart)")
    return passed("source.server_id", f"server_id={sid}")


def _replication_account(s: SourceFacts, f: PlanFacts) -> Check:
    user = f.pb.replication.user
    if s.repl_grants is None:
        can = {"CREATE USER", "REPLICATION SLAVE"} <= s.privileges or "ALL PRIVILEGES" in s.privileges
        if can:
            return passed("source.replication_account", f"'{user}'@'%' does not exist; {f.pb.source.user} may "
                          "create it with REPLICATION SLAVE (migrate start does)")
        return fail("source.replication_account", f"'{user}'@'%' does not exist and {f.pb.source.user} lacks "
                    "CREATE USER or REPLICATION SLAVE", f"CREATE USER '{user}'@'%' IDENTIFIED BY '...'; "
                    f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%';")
    text = " ".join(s.repl_grants).upper()
    has_slave = "REPLICATION SLAVE" in text or "ALL PRIVILEGES ON *.*" in text
    if has_slave:
        return passed("source.replication_account", f"'{user}'@'%' exists with REPLICATION SLAVE")
    grant = f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%';"
    if "REPLICATION SLAVE" in s.privileges or "ALL PRIVILEGES" in s.privileges:
        return passed("source.replication_account", f"'{user}'@'%' exists without REPLICATION SLAVE; "
                      f"{f.pb.source.user} may grant it (migrate start does)")
    return fail("source.replication_account", f"'{user}'@'%' exists without REPLICATION SLAVE and "
                f"{f.pb.source.user} cannot grant it: the target could not replicate", f"as an administrator: {grant}")


def _own_replication(s: SourceFacts, f: PlanFacts) -> Check:
    """A source that is itself a replica: what its own primary sends is not stopped by the block on it, and
    without log_slave_updates it never reaches the source's binary log, so never the target."""
    upstream = [r for r in s.replicates_from if not r.startswith(f.extra.get("target_address", "?") + " ")]
    if not upstream:
        return passed("source.own_replication", "the source replicates from no other server")
    name = s.dialect.log_replica_updates_variable
    if not on(s.variables.get(name, s.variables.get("log_slave_updates"))):
        return fail("source.own_replication", f"the source replicates from {listing(upstream)} with {name}=OFF: "
                    "what arrives from there is not in its binary log, so it would never reach the target",
                    f"turn {name} on (the parameter group on RDS), or migrate from the upstream primary")
    return warn("source.own_replication", f"the source is itself a replica of {listing(upstream)}: writes that "
                "arrive from there are not stopped by the write block on the source",
                "stop the writes upstream for the window, or migrate from the upstream primary")


def _logs_what_it_applies(s: SourceFacts, f: PlanFacts) -> Check:
    """After a cutover the source replicates from the target (the way back). Without log_slave_updates what it
    applies from there never reaches its binary log: its read replicas miss the writes the target took, and so
    does a seed taken from one of them after a rollback (a test found the target short of those rows)."""
    name = s.dialect.log_replica_updates_variable
    value = s.variables.get(name, s.variables.get("log_slave_updates"))
    if on(value) or not f.pb.cutover.reverse_replication:
        return passed("source.log_replica_updates", f"{name}={value}" + ("" if on(value) else
                      " (reverse replication is off: the source never applies the target's writes)"))
    return warn("source.log_replica_updates", f"{name}=OFF: after a cutover the source applies the target's writes "
                "without logging them, so its read replicas never get them, nor does a seed taken from one after a "
                "rollback", f"set {name}=1 (the instance's parameter group on RDS; it needs a reboot)")


def _primary_keys(s: SourceFacts) -> Check:
    if not s.no_primary_key:
        return passed("source.primary_keys", f"every one of {len(s.tables)} table(s) has a primary key")
    return warn("source.primary_keys", f"{len(s.no_primary_key)} table(s) without a primary key: "
                f"{listing(s.no_primary_key)}",
                "add a primary key (ALTER TABLE ... ADD PRIMARY KEY): row-based replication scans such a table for "
                "every changed row, and checksums cannot be chunked")


def _engines(s: SourceFacts) -> Check:
    other = [f"{t['schema']}.{t['name']} ({t['engine']})" for t in s.tables if (t["engine"] or "").upper() != "INNODB"]
    if not other:
        return passed("source.engines", "every table is InnoDB")
    return warn("source.engines", f"{len(other)} non-InnoDB table(s): {listing(other)}",
                "convert them (ALTER TABLE ... ENGINE=InnoDB): they are outside a transaction's snapshot, so "
                "a write during the dump can land twice; migrate locks them while the dump starts")


def _long_transactions(s: SourceFacts) -> Check:
    if not s.long_transactions:
        return passed("source.long_transactions", "no transaction open for more than 60 s")
    ages = ", ".join(f"thread {t['id']} ({t['age_s']} s)" for t in s.long_transactions[:5])
    return warn("source.long_transactions", f"{len(s.long_transactions)} long transaction(s): {ages}",
                "let them finish (or end them) before migrate start: the seed's table locks wait behind them")


def _size(s: SourceFacts) -> Check:
    by_schema: dict[str, list[float]] = {}
    for t in s.tables:
        entry = by_schema.setdefault(t["schema"], [0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += float(t["bytes"] or 0)
        entry[2] += float(t["est_rows"] or 0)
    parts = [f"{name}: {int(n)} tables, {b / MB:,.1f} MB, ~{r:,.0f} rows" for name, (n, b, r) in by_schema.items()]
    biggest = sorted(s.tables, key=lambda t: -(t["bytes"] or 0))[:3]
    top = ", ".join(f"{t['schema']}.{t['name']} {float(t['bytes'] or 0) / MB:,.1f} MB" for t in biggest)
    return passed("source.data_size", f"{s.data_bytes / MB:,.1f} MB in {len(s.tables)} table(s) ({'; '.join(parts)})"
                  + (f"; largest: {top}" if top else ""))


def _code_objects(s: SourceFacts) -> Check:
    counts = ", ".join(f"{len(v)} {k}" for k, v in s.code.items())
    enabled = [f"{e['schema']}.{e['name']}" for e in s.code["events"] if e["status"] == "ENABLED"]
    extra = f"; enabled events {listing(enabled)} stay disabled on the replica until promotion" if enabled else ""
    return passed("source.code_objects", counts + extra)


def _definers(s: SourceFacts) -> Check:
    if s.missing_definers:
        names = [str(a) for a in s.missing_definers]
        return warn("source.definers", f"DEFINER account(s) that do not exist on the source: {listing(names)}",
                    "create those accounts, or recreate the objects with an existing DEFINER: calls and triggers "
                    "fail with 1449 otherwise")
    names = [str(a) for a in s.definers]
    return passed("source.definers", f"definers {listing(names) or '(none)'} exist and are carried to the target")


def _accounts(s: SourceFacts, f: PlanFacts) -> Check:
    """Account statements replicate: a GRANT, ALTER USER or DROP USER on the source for an account the target
    lacks stops the target's replication (1133, "Can't find any matching row in the user table")."""
    if s.carried_accounts is None:
        return passed("source.accounts", "cannot list the accounts to carry until the application accounts exist")
    skipped = "; ".join(f"{x['account']} ({x['why']})" for x in s.skipped_accounts)
    said = (f"start carries {len(s.carried_accounts)} account(s) and role(s) (seed.accounts: {f.pb.seed.accounts}): "
            f"{listing(s.carried_accounts, most=20)}" + (f"; not carried: {skipped}" if skipped else ""))
    chosen = f.pb.seed.accounts == "listed" or any(x["why"] == "listed in seed.skip_accounts"
                                                    for x in s.skipped_accounts)
    if chosen:
        return warn("source.accounts", said + ". An account statement (GRANT, REVOKE, ALTER USER, SET PASSWORD, "
                    "DROP USER) on the source for an account that is not carried stops the target's replication "
                    "with error 1133", "make no such change until the cutover, or carry those accounts "
                    "(seed.accounts: all, fewer seed.skip_accounts)")
    return passed("source.accounts", said)
