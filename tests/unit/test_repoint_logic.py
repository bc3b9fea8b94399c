"""The repointers' pure logic: record values compared, plan's repoint check (a long TTL warns, a route53 record to
a target on another port fails)."""

from __future__ import annotations

import dataclasses

from migrate.capabilities.repoint import Caution
from migrate.capabilities.repoint.route53 import describe_set, same_value
from migrate.checks import cutover
from migrate.playbook import Repoint, Route53Repoint
from tests.unit.test_checks import facts


def test_record_values_compare_ips_and_names_as_dns_does():
    assert same_value("127.0.0.3", "127.0.0.3") and not same_value("127.0.0.3", "127.0.0.2")
    assert same_value("DB.example.com.", "db.example.com")
    assert describe_set({"Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": "x.rds."}]}) == "CNAME x.rds. (TTL 300 s)"
    assert describe_set(None) == "no record"


def repoint_check(f):
    return next(c for c in cutover.checks(f) if c.id == "cutover.repoint")


def with_route53(f, target_port: int):
    pb = f.pb.model_copy(update={
        "cutover": f.pb.cutover.model_copy(update={"repoint": Repoint(method="route53", route53=Route53Repoint(
            zone_id="Z1", record="db.internal."))}),
        "target": f.pb.target.model_copy(update={"port": target_port})})
    return dataclasses.replace(f, pb=pb)


def test_a_long_ttl_warns_and_a_target_on_another_port_fails_a_route53_repoint():
    f = facts()
    same = with_route53(f, f.pb.source.port)
    assert repoint_check(dataclasses.replace(same, repoint=(True, "record A 10.0.0.1 (TTL 5 s)"))).status == "pass"
    warned = repoint_check(dataclasses.replace(same, repoint=(True, Caution("TTL of 300 s is over 5 s"))))
    assert warned.status == "warn"
    other = repoint_check(dataclasses.replace(with_route53(f, f.pb.source.port + 1), repoint=(True, "ok")))
    assert other.status == "fail" and "carries no port" in other.evidence
