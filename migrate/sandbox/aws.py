"""A moto server on loopback standing in for AWS: an RDS for MariaDB instance matching the source,
its custom parameter group, a security group, and a Route53 zone whose record points at the source.
moto runs through migrate.sandbox.moto_server (RDS's reset_db_parameter_group added); what the parameter
group says reaches the source server through migrate.sandbox.rds_control."""

from __future__ import annotations

import http.client
import importlib.util
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from migrate.adapters import aws as aws_adapter
from migrate.errors import SandboxError
from migrate.playbook import Aws
from migrate.sandbox import procs

REGION = "us-east-1"
INSTANCE_ID = "shop-prod"
PARAMETER_GROUP = "shop-prod-mariadb1011"
ZONE = "sandbox.internal."
RECORD = "db.sandbox.internal."


@dataclass
class MotoServer:
    base: Path
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def credentials_file(self) -> Path:
        return self.base / "credentials"

    @property
    def settings(self) -> Aws:
        return Aws(region=REGION, endpoint_url=self.endpoint_url, credentials_file=self.credentials_file)

    def prepare(self) -> None:
        if importlib.util.find_spec("moto") is None:
            raise SandboxError("moto is not installed in this environment",
                               hint="pip install 'migrate[sandbox]' (make demo does it)")
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        # moto accepts any key; the file keeps the playbook free of exported variables.
        self.credentials_file.touch(mode=0o600)
        self.credentials_file.write_text("[default]\naws_access_key_id = sandbox\naws_secret_access_key = sandbox\n")

    def start(self) -> None:
        if self.running():
            return
        # moto's server through the sandbox's wrapper, which adds reset_db_parameter_group (moto_server.py)
        procs.spawn([sys.executable, "-m", "migrate.sandbox.moto_server", "--dir", str(self.base.parent),
                     "-H", "127.0.0.1", "-p", str(self.port)],
                    log_path=self.base / "moto.log", pid_path=self.base / "moto.pid")
        procs.wait_until(self._answers, timeout=30, what=f"moto server on port {self.port}",
                         log_path=self.base / "moto.log", interval=0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1) as resp:
                return resp.status == 200
        except (OSError, http.client.HTTPException):  # not moto: something else holds the port
            return False

    def running(self) -> bool:
        return procs.alive(procs.read_pid(self.base / "moto.pid")) and self._answers()

    def stop(self) -> None:
        procs.stop(procs.read_pid(self.base / "moto.pid"))

    # -- what the sandbox's "AWS account" holds ---------------------------------------------------
    def provision(self, *, source_port: int, master_user: str, master_password: str, engine_version: str) -> None:
        rds = aws_adapter.client(self.settings, "rds")
        ec2 = aws_adapter.client(self.settings, "ec2")
        rds.create_db_parameter_group(DBParameterGroupName=PARAMETER_GROUP, DBParameterGroupFamily="mariadb10.11",
                                      Description="shop-prod: binlog_format ROW for replication")
        rds.modify_db_parameter_group(DBParameterGroupName=PARAMETER_GROUP, Parameters=[
            {"ParameterName": "binlog_format", "ParameterValue": "ROW", "ApplyMethod": "immediate"},
            {"ParameterName": "log_bin_trust_function_creators", "ParameterValue": "1", "ApplyMethod": "immediate"},
        ])
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        group = ec2.create_security_group(GroupName="shop-prod-db", Description="shop-prod MySQL", VpcId=vpc)
        ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": source_port, "ToPort": source_port,
            "IpRanges": [{"CidrIp": "127.0.0.1/32", "Description": "target host (sandbox)"}]}])
        instance = rds.create_db_instance(
            DBInstanceIdentifier=INSTANCE_ID, Engine="mariadb", EngineVersion=engine_version,
            DBInstanceClass="db.r6g.large", AllocatedStorage=100, StorageType="gp3", MasterUsername=master_user,
            MasterUserPassword=master_password, DBParameterGroupName=PARAMETER_GROUP, BackupRetentionPeriod=7,
            MultiAZ=True, Port=source_port, VpcSecurityGroupIds=[group["GroupId"]])["DBInstance"]
        address = instance.get("Endpoint", {}).get("Address") or f"{INSTANCE_ID}.sandbox.rds.amazonaws.com"
        route53 = aws_adapter.client(self.settings, "route53")
        zone = route53.create_hosted_zone(Name=ZONE, CallerReference="migrate-sandbox")["HostedZone"]["Id"]
        route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
            "Action": "UPSERT", "ResourceRecordSet": {"Name": RECORD, "Type": "CNAME", "TTL": 5,
                                                      "ResourceRecords": [{"Value": address}]}}]})

    def provisioned(self) -> bool:
        try:
            rds = aws_adapter.client(self.settings, "rds")
            rds.describe_db_instances(DBInstanceIdentifier=INSTANCE_ID)
            zones = aws_adapter.client(self.settings, "route53").list_hosted_zones_by_name(DNSName=ZONE)
        except Exception:  # noqa: BLE001 - not there (or moto not up) means not provisioned
            return False
        return any(z["Name"] == ZONE for z in zones["HostedZones"])

    def zone_id(self) -> str:
        zones = aws_adapter.client(self.settings, "route53").list_hosted_zones_by_name(DNSName=ZONE)
        return next(z["Id"] for z in zones["HostedZones"] if z["Name"] == ZONE).rsplit("/", 1)[-1]
