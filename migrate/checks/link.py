"""Checks of the replication link between source and target: its password, and whether the target's GTID
history and position fit the source's binary log (MariaDB's domain-server-sequence GTIDs)."""

from __future__ import annotations

from migrate.checks import Check, fail, listing, on, passed, skipped, warn
from migrate.checks.facts import PlanFacts


def checks(f: PlanFacts) -> list[Check]:
    history = ("replication.gtid_history", "replication.position")
    if f.target is None:
        return [skipped(i, "target") for i in ("replication.password", "replication.login", *history)]
    out = [_password(f), _login(f)]
    if f.source is None:
        return out + [skipped(i, "source") for i in history]
    if not (f.source.gtid and f.target.gtid):  # a binary log off or unreadable: the binlog checks say so
        return out + [passed(i, "no GTID history to compare (binary log off or not readable)") for i in history]
    if f.source.dialect.is_mariadb:
        return out + [_gtid_history(f), _position(f)]
    return out + _mysql_history(f)


def _login(f: PlanFacts) -> Check:
    said = f.extra.get("replication_login")
    if said is None:
        return passed("replication.login", "the replication account does not exist yet: start creates it with "
                      "the playbook's password") if f.source else skipped("replication.login", "source")
    if said == "ok":
        return passed("replication.login", f"{f.pb.replication.user} logs in on the source with the playbook's "
                      "password and TLS settings")
    return fail("replication.login", f"the existing replication account cannot log in as start would: {said}",
                "give replication the account's password (or drop the account so that start creates it); an "
                "account that requires TLS needs source.tls.mode: required")


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


Intervals = list[tuple[int, int]]


def gtid_set(text: str) -> dict[str, Intervals]:
    """MySQL's "uuid:1-5:7,uuid2:3" -> {uuid: [(1, 5), (7, 7)], ...}: intervals, as histories run to billions."""
    out: dict[str, Intervals] = {}
    for part in filter(None, (p.strip() for p in (text or "").replace("\n", "").split(","))):
        uuid, *ranges = part.split(":")
        for r in ranges:
            low, _, high = r.partition("-")
            out.setdefault(uuid.lower(), []).append((int(low), int(high or low)))
    return {u: sorted(r) for u, r in out.items()}


def _minus(a: Intervals, b: Intervals) -> Intervals:
    out = []
    for low, high in a:
        for b_low, b_high in b:
            if b_high < low or b_low > high:
                continue
            if b_low > low:
                out.append((low, b_low - 1))
            low = max(low, b_high + 1)
            if low > high:
                break
        if low <= high:
            out.append((low, high))
    return out


def _missing(a: dict[str, Intervals], b: dict[str, Intervals]) -> dict[str, Intervals]:
    """What of `a` is not in `b`."""
    return {u: rest for u, r in a.items() if (rest := _minus(r, b.get(u, [])))}


def _shown(gtids: dict[str, Intervals]) -> str:
    return listing([u + ":" + ":".join(f"{lo}-{hi}" if hi > lo else str(lo) for lo, hi in r)
                    for u, r in sorted(gtids.items())])


def _mysql_history(f: PlanFacts) -> list[Check]:
    """MySQL: the target's executed set must lie within the source's (else it holds transactions the source
    never had), and, once it replicates, hold everything the source purged (else auto-position cannot serve
    it: error 1236)."""
    source, target = gtid_set(f.source.gtid.get("executed", "")), gtid_set(f.target.gtid.get("executed", ""))
    errant = _missing(target, source)
    history = warn("replication.gtid_history", f"the target executed transactions the source does not have: "
                   f"{_shown(errant)}", "find what wrote them (the target should have been read-only); RESET "
                   "MASTER on the target before it is seeded") if errant else \
        passed("replication.gtid_history", "the target's executed GTIDs all come from the source")
    source_for_target = f.extra.get("source_for_target", "?")
    if not any(r.startswith(source_for_target + " ") for r in f.target.replicates_from):
        return [history, passed("replication.position", "the target does not replicate from the source yet: "
                                "start takes the position")]
    purged = _missing(gtid_set(f.source.gtid.get("purged", "")), target)
    if purged:
        return [history, fail("replication.position", f"the source purged transactions the target never "
                              f"executed: {_shown(purged)}", "reseed the target (migrate start on an empty "
                              "target); keep the source's binlogs longer next time")]
    return [history, passed("replication.position", "the target holds everything the source purged")]
