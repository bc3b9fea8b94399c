"""Checks of the RDS instance through the AWS API (describe calls only)."""

from __future__ import annotations

from migrate.capabilities.rds_inspector import allows
from migrate.checks import Check, fail, passed, warn
from migrate.checks.facts import PlanFacts
from migrate.checks.source import binlog_format_check


def checks(f: PlanFacts) -> list[Check]:
    if f.pb.source.kind != "rds":
        return []
    r, name = f.rds, f.pb.source.rds_instance_id
    if r is None or not r.found:
        return [fail("rds.instance", f"RDS instance {name} not found: {r.error if r else 'not looked up'}",
                     "check source.rds_instance_id, aws.region and the credentials")]
    i = r.instance
    out = []
    status = i.get("DBInstanceStatus", "?")
    out.append(passed("rds.instance", f"{name}: {status}, {i.get('Engine')} {i.get('EngineVersion')}, "
                      f"{i.get('DBInstanceClass')}") if status == "available" else
               fail("rds.instance", f"{name} is {status}", "wait until the instance is available"))
    if f.source and f.source.dialect.is_mariadb != (i.get("Engine") == "mariadb"):
        out.append(warn("rds.engine", f"the API says {i.get('Engine')}, the server says {f.source.dialect.name}",
                        "check that source.host is this instance's endpoint"))
    backups = int(i.get("BackupRetentionPeriod") or 0)
    out.append(passed("rds.backups", f"automated backups kept {backups} day(s)") if backups > 0 else
               fail("rds.backups", "automated backups are off (retention 0): RDS writes no binary log",
                    f"aws rds modify-db-instance --db-instance-identifier {name} --backup-retention-period 7 "
                    "--apply-immediately"))
    group = r.parameter_group or "?"
    if group.startswith("default."):
        out.append(fail("rds.parameter_group", f"{name} uses the default parameter group {group}, which cannot be "
                        "changed", "create a custom DB parameter group (copy of the default), attach it and reboot "
                        "in a quiet hour, well before the window"))
    else:
        out.append(passed("rds.parameter_group", f"custom parameter group {group}"))
    fmt = r.parameters.get("binlog_format")
    if fmt:
        out.append(binlog_format_check("rds.binlog_format", fmt.upper(), f"{group} sets binlog_format={fmt}",
                                       f"aws rds modify-db-parameter-group --db-parameter-group-name {group} "
                                       "--parameters ParameterName=binlog_format,ParameterValue=ROW,"
                                       "ApplyMethod=immediate"))
    else:
        out.append(warn("rds.binlog_format", f"{group} leaves binlog_format at the engine default",
                        f"set binlog_format=ROW in {group} explicitly"))
    storage = f"{i.get('AllocatedStorage')} GB {i.get('StorageType', '')}".strip()
    out.append(passed("rds.multi_az", f"Multi-AZ {'on' if i.get('MultiAZ') else 'off'}; storage {storage}"))
    port = int((i.get("Endpoint") or {}).get("Port") or f.pb.source.port)
    rule = allows(r.ingress, f.pb.target.host, port)
    out.append(passed("rds.security_group", rule) if rule else
               warn("rds.security_group", f"no security-group rule of {name} names {f.pb.target.host} on port {port} "
                    "by CIDR (a rule by security group id may still allow it; network.target_to_source tests it)",
                    f"aws ec2 authorize-security-group-ingress --group-id <sg> --protocol tcp --port {port} "
                    f"--cidr {f.pb.target.host}/32"))
    return out
