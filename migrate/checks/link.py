"""Checks of the replication link between source and target: its password, and whether the target's GTID
history and position fit the source's binary log (MariaDB's domain-server-sequence GTIDs)."""

from __future__ import annotations

from migrate.checks import Check, fail, listing, on, passed, skipped, warn
from migrate.checks.facts import PlanFacts


def checks(f: PlanFacts) -> list[Check]:
    if f.target is None:
        return []
    out = [_password(f)]
    if f.source is None:
        return out + [skipped("replication.gtid_history", "source"), skipped("replication.position", "source")]
    if f.source.dialect.is_mariadb and f.source.gtid and f.target.gtid:
        out += [_gtid_history(f), _position(f)]
    return out


def _password(f: PlanFacts) -> Check:
    """The target keeps the replication password in its connection settings, and the source the target's for
    the way back: the shorter limit of the two flavors holds."""
    length = f.extra.get("replication_password_length")
    servers = [f.target.dialect] + ([f.source.dialect] if f.source and f.pb.cutover.reverse_replication else [])
    limit = min(d.replication_password_max for d in servers)
    if length > limit:  # an empty one never gets here: reading it fails first (exit 2)
        return fail("replication.password", f"the replication password has {length} characters; "
                    f"{' and '.join(sorted({d.name for d in servers}))} take(s) at most {limit} in a replica's "
                    "connection settings: CHANGE MASTER would refuse it", f"use a password of at most {limit} "
                    "characters for replication (migrate start creates the account with it)")
    return passed("replication.password", f"{length} characters (at most {limit})")


def gtids(text: str) -> dict[int, tuple[int, int]]:
    """"0-1-100,1-2-7" -> {domain: (server_id, sequence)}."""
    out = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        domain, server_id, seq = (int(x) for x in part.split("-"))
        out[domain] = (server_id, seq)
    return out


def _gtid_history(f: PlanFacts) -> Check:
    """The target's binary log ahead of the source's in a domain both use: the source's next transactions there
    carry sequence numbers the target has already logged. gtid_strict_mode refuses them (error 1950) and stops
    replication; without it they apply, and what the target wrote itself is data the source never had. (After a
    rollback it is the source that lags so when it logs without log_slave_updates.)"""
    source, target = gtids(f.source.gtid.get("binlog_pos", "")), gtids(f.target.gtid.get("binlog_pos", ""))
    own = int(f.target.variables.get("server_id") or 0)
    ahead = {d: t for d, t in target.items() if d in source and t[1] > source[d][1]}
    if not ahead:
        return passed("replication.gtid_history", "the target's binary log is not ahead of the source's in any "
                      "domain the source writes")
    said = listing([f"domain {d}: target at {d}-{sid}-{seq}, source at {'-'.join(map(str, (d, *source[d])))}"
                    for d, (sid, seq) in sorted(ahead.items())])
    if on(f.target.variables.get("gtid_strict_mode")):
        return fail("replication.gtid_history", f"the target's binary log is ahead of the source's ({said}) and "
                    "gtid_strict_mode=ON on the target refuses the source's next transactions there: replication "
                    "would stop with error 1950", "if the target's own transactions there are not wanted: RESET "
                    "MASTER on the target (it is to be reseeded), or SET GLOBAL gtid_strict_mode=OFF; give each "
                    "server its own gtid_domain_id for writes of its own")
    if any(sid == own for sid, _ in ahead.values()):
        return warn("replication.gtid_history", f"the target logged transactions of its own in the source's domain "
                    f"({said}): data the source does not have", "find what wrote them (the target should have been "
                    "read-only); RESET MASTER on the target before it is seeded")
    return passed("replication.gtid_history", f"ahead of the source ({said}), not with its own server_id, and "
                  "gtid_strict_mode is OFF on the target")


def _position(f: PlanFacts) -> Check:
    """A target already replicating from the source resumes at its gtid_slave_pos: the source must still hold the
    binary logs after it, and must have logged it."""
    source_for_target = f.extra.get("source_for_target", "?")
    if not any(r.startswith(source_for_target + " ") for r in f.target.replicates_from):
        return passed("replication.position", "the target does not replicate from the source yet: start takes "
                      "the position")
    now, oldest = gtids(f.source.gtid.get("binlog_pos", "")), gtids(f.source.gtid.get("oldest", ""))
    problems = []
    for domain, (sid, seq) in sorted(gtids(f.target.gtid.get("slave_pos", "")).items()):
        at = f"{domain}-{sid}-{seq}"
        if domain not in now and domain not in oldest:
            problems.append(f"{at}: domain {domain} is not in the source's binary log")
        elif domain in now and seq > now[domain][1]:
            problems.append(f"{at}: ahead of the source ({domain}-{now[domain][0]}-{now[domain][1]}): the target "
                            "applied transactions this source never logged")
        elif domain in oldest and seq < oldest[domain][1]:
            problems.append(f"{at}: the source's oldest binary log starts after {domain}-{oldest[domain][0]}-"
                            f"{oldest[domain][1]}: what follows the target's position was purged")
    if problems:
        return fail("replication.position", f"the target's replication position is not in the source's binary "
                    f"log history: {'; '.join(problems)}", "reseed the target (RESET SLAVE ALL and RESET MASTER on "
                    "it, drop the copied schemas, then migrate start); keep the source's binlogs longer next time")
    return passed("replication.position", f"the target resumes at {f.target.gtid.get('slave_pos')}, within the "
                  "source's binary log")
