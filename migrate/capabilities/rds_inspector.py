"""Read-only facts about the RDS instance from the AWS API: describe calls only."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from migrate.adapters import aws
from migrate.playbook import Aws


@dataclass
class RdsFacts:
    found: bool
    error: str | None = None
    instance: dict[str, Any] = field(default_factory=dict)
    parameter_group: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)  # the group's values that differ from the engine's
    ingress: list[dict[str, Any]] = field(default_factory=list)  # tcp rules of the instance's security groups


def inspect(settings: Aws, instance_id: str) -> RdsFacts:
    rds = aws.client(settings, "rds")
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
    except Exception as exc:  # noqa: BLE001 - DBInstanceNotFound, credentials, endpoint: all mean "cannot see it"
        return RdsFacts(found=False, error=str(exc))
    facts = RdsFacts(found=True, instance=instance)
    groups = instance.get("DBParameterGroups") or []
    if groups:
        facts.parameter_group = groups[0]["DBParameterGroupName"]
        paginator = rds.get_paginator("describe_db_parameters")
        for page in paginator.paginate(DBParameterGroupName=facts.parameter_group, Source="user"):
            for p in page["Parameters"]:
                if "ParameterValue" in p:
                    facts.parameters[p["ParameterName"]] = p["ParameterValue"]
    sg_ids = [g["VpcSecurityGroupId"] for g in instance.get("VpcSecurityGroups") or []]
    if sg_ids:
        ec2 = aws.client(settings, "ec2")
        for group in ec2.describe_security_groups(GroupIds=sg_ids)["SecurityGroups"]:
            for rule in group.get("IpPermissions", []):
                facts.ingress.append({"group": group["GroupId"], **rule})
    return facts


def allows(ingress: list[dict[str, Any]], address: str, port: int) -> str | None:
    """The rule letting `address` reach `port`, described; None when no CIDR rule does."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    for rule in ingress:
        if rule.get("IpProtocol") not in ("tcp", "-1"):
            continue
        low, high = rule.get("FromPort", 0), rule.get("ToPort", 65535)
        if rule.get("IpProtocol") == "tcp" and not (low <= port <= high):
            continue
        for r in rule.get("IpRanges", []):
            if ip in ipaddress.ip_network(r["CidrIp"], strict=False):
                return f"{rule['group']} allows {r['CidrIp']} on {low}-{high}"
    return None
