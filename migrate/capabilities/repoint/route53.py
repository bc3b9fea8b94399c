"""Repoint through a Route53 record: UPSERT it (A for an IP, CNAME for a name), wait until Route53 says the
change is INSYNC, read it back. The record it replaces is saved first (`snapshot`), so the rollback puts back
exactly that one (a CNAME to the RDS endpoint, its TTL).

A DNS record carries no port: the application keeps connecting to the port it has always used, so the new
primary must listen on that port (`port`, the source's), and a repoint to another port is refused.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrate.adapters import aws as aws_adapter
from migrate.adapters.haproxy import is_ip, same_ip
from migrate.capabilities.repoint.base import Caution, RepointCheckFailed, Repointer, RepointFailed
from migrate.playbook import Aws, Route53Repoint

LONG_TTL_S = 5
WHY_TTL = ("clients keep old addresses for the TTL and pools keep their connections, which is why the write block "
           "kills the application's sessions")


def _fqdn(name: str) -> str:
    return name.lower() if name.endswith(".") else name.lower() + "."


def _values(rs: dict[str, Any] | None) -> list[str]:
    if not rs:
        return []
    if "AliasTarget" in rs:
        return [rs["AliasTarget"]["DNSName"]]
    return [r["Value"] for r in rs.get("ResourceRecords", [])]


def describe_set(rs: dict[str, Any] | None) -> str:
    if not rs:
        return "no record"
    kind = "alias" if "AliasTarget" in rs else rs["Type"]
    ttl = f" (TTL {rs['TTL']} s)" if "TTL" in rs else ""
    return f"{kind} {', '.join(_values(rs))}{ttl}"


def same_value(value: str, host: str) -> bool:
    if is_ip(value) or is_ip(host):
        return same_ip(value, host)
    return _fqdn(value) == _fqdn(host)


class Route53Repointer(Repointer):
    method = "route53"

    def __init__(self, settings: Route53Repoint, aws: Aws | None = None, *, port: int | None = None,
                 client: Any = None, insync_timeout_s: float = 60.0, poll_s: float = 1.0):
        self.settings = settings
        self.name = _fqdn(settings.record)
        self.zone = settings.zone_id.rsplit("/", 1)[-1]
        self.port = port  # the application's port: the only one a record can lead to
        self.client = client or aws_adapter.client(aws or Aws(), "route53")
        self.insync_timeout_s = insync_timeout_s
        self.poll_s = poll_s

    @property
    def _where(self) -> str:
        return f"Route53 record {self.name} (zone {self.zone})"

    def describe(self, host: str, port: int) -> str:
        kind = "A" if is_ip(host) else "CNAME"
        return (f"save {self._where} as it is, UPSERT it to {kind} {host} (TTL {self.settings.ttl} s), wait until "
                f"Route53 reports the change INSYNC (at most {self.insync_timeout_s:g} s) and read it back; the "
                f"application keeps connecting to port {port}")

    # -- reading -------------------------------------------------------------------------------------

    def _call(self, what: str, fn, **kw) -> dict[str, Any]:
        try:
            return fn(**kw)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise RepointFailed(f"Route53 refused to {what} for {self._where}: {err.get('Code')}: "
                                f"{err.get('Message')}", hint=self._hint(err.get("Code", ""))) from None
        except BotoCoreError as exc:
            raise RepointFailed(f"cannot reach Route53 to {what} for {self._where}: {exc}",
                                hint="check the network path to AWS and the playbook's aws section") from None

    @staticmethod
    def _hint(code: str) -> str:
        if code in ("AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId"):
            return ("give migrate's AWS identity route53:GetHostedZone, ListResourceRecordSets, "
                    "ChangeResourceRecordSets and GetChange on the zone")
        if code == "NoSuchHostedZone":
            return "fix cutover.repoint.route53.zone_id (aws route53 list-hosted-zones lists them)"
        return "Route53's message says what it refused; nothing else was changed by this call"

    def record(self) -> dict[str, Any] | None:
        """The record set named `record` (A, AAAA or CNAME) as Route53 holds it, or None when there is none."""
        answer = self._call("read the record", self.client.list_resource_record_sets, HostedZoneId=self.zone,
                            StartRecordName=self.name, MaxItems="20")
        found = [rs for rs in answer.get("ResourceRecordSets", [])
                 if _fqdn(rs["Name"]) == self.name and rs["Type"] in ("A", "AAAA", "CNAME")]
        if len(found) > 1 or any("SetIdentifier" in rs for rs in found):
            raise RepointFailed(f"{self._where} has {len(found)} record sets with routing policies "
                                f"({', '.join(describe_set(rs) for rs in found)}): migrate repoints one simple record",
                                hint="use a simple record for the database's name, or repoint with method command")
        return found[0] if found else None

    def current(self) -> tuple[str, int] | None:
        values = _values(self.record())
        if len(values) != 1 or self.port is None:
            return None
        return values[0].rstrip(".") if not is_ip(values[0]) else values[0], self.port

    def points_to(self, host: str, port: int) -> bool:
        values = _values(self.record())
        return len(values) == 1 and same_value(values[0], host) and (self.port is None or port == self.port)

    # -- changing ------------------------------------------------------------------------------------

    def snapshot(self, host: str, port: int) -> dict[str, Any]:
        return {"zone_id": self.zone, "record_set": self.record()}

    def point_to(self, host: str, port: int) -> str:
        if self.port is not None and port != self.port:
            raise RepointFailed(f"{self._where} can only change the address: the application connects to port "
                                f"{self.port}, and {host} listens on {port}",
                                hint=f"make the new primary listen on port {self.port}, or repoint with a method "
                                     "that carries a port (haproxy, ssh_file, command)")
        before = self.record()
        kind = ("AAAA" if ":" in host else "A") if is_ip(host) else "CNAME"
        wanted = {"Name": self.name, "Type": kind, "TTL": self.settings.ttl, "ResourceRecords": [{"Value": host}]}
        waited = self._change(before, wanted, f"point it to {host}")
        self._read_back(wanted, f"being set to {host}")
        return (f"{self._where} is now {describe_set(wanted)} instead of {describe_set(before)}; INSYNC after "
                f"{waited:.1f} s" + (f"; clients that cached the old answer may keep it up to {before['TTL']} s"
                                     if before and before.get("TTL") else ""))

    def restore(self, saved: dict[str, Any]) -> str:
        wanted = saved.get("record_set")
        now = self.record()
        if now == wanted:
            return f"{self._where} was still {describe_set(wanted)}: nothing to restore"
        waited = self._change(now, wanted, "put it back", strict=False)
        self._read_back(wanted, "being put back")
        synced = f"INSYNC after {waited:.1f} s" if waited is not None else (
            f"not reported INSYNC within {self.insync_timeout_s:g} s: some name servers may answer "
            f"{describe_set(now)} for a while, where writes are closed")
        return f"{self._where} put back to {describe_set(wanted)} (was {describe_set(now)}); {synced}"

    def _change(self, now: dict[str, Any] | None, wanted: dict[str, Any] | None, what: str, *,
                strict: bool = True) -> float | None:
        """One atomic change batch from `now` to `wanted`, then the wait for INSYNC; the seconds waited (None: not
        INSYNC in time, when not `strict`: the change is taken, its propagation is Route53's)."""
        if wanted is None:
            changes = [{"Action": "DELETE", "ResourceRecordSet": now}]
        elif now is not None and (now["Type"] != wanted["Type"] or "AliasTarget" in now):
            changes = [{"Action": "DELETE", "ResourceRecordSet": now}, {"Action": "UPSERT", "ResourceRecordSet": wanted}]
        else:
            changes = [{"Action": "UPSERT", "ResourceRecordSet": wanted}]
        answer = self._call(what, self.client.change_resource_record_sets, HostedZoneId=self.zone,
                            ChangeBatch={"Comment": "migrate repoint", "Changes": changes})
        change_id = answer["ChangeInfo"]["Id"]
        started = time.monotonic()
        status = answer["ChangeInfo"].get("Status")
        while status != "INSYNC":
            if time.monotonic() - started > self.insync_timeout_s:
                if not strict:
                    return None
                raise RepointFailed(
                    f"Route53 took the change to {what} ({change_id}) but did not report it INSYNC within "
                    f"{self.insync_timeout_s:g} s (still {status}): its name servers may still answer "
                    f"{describe_set(now)}", hint="check AWS's status page and `aws route53 get-change --id "
                                                 f"{change_id}`; the rollback puts the saved record back")
            time.sleep(self.poll_s)
            status = self._call("follow the change", self.client.get_change, Id=change_id)["ChangeInfo"]["Status"]
        return time.monotonic() - started

    def _read_back(self, wanted: dict[str, Any] | None, after: str) -> None:
        now = self.record()
        if (now is None) != (wanted is None) or (now and (now["Type"] != wanted["Type"]
                                                           or _values(now) != _values(wanted))):
            raise RepointFailed(f"{self._where} is {describe_set(now)} after {after} {describe_set(wanted)}",
                                hint="something else changes this record (another tool, a deployment): find it "
                                     "before retrying")

    def check(self) -> str:
        try:
            zone = self._call("read the hosted zone", self.client.get_hosted_zone, Id=self.zone)["HostedZone"]
            rs = self.record()
        except RepointFailed as exc:
            raise RepointCheckFailed(exc.message, hint=exc.hint) from None
        if rs is None:
            raise RepointCheckFailed(f"{self._where} does not exist in zone {zone['Name']}",
                                     hint="fix cutover.repoint.route53.record: it must be the name the application "
                                          "connects to")
        port = f"; the application's port stays {self.port}" if self.port else ""
        said = (f"Route53 zone {self.zone} ({zone['Name']}) holds {self.name} as {describe_set(rs)}; the repoint "
                f"sets TTL {self.settings.ttl} s{port}")
        longest = max(rs.get("TTL", 0), self.settings.ttl)
        if longest > LONG_TTL_S:
            return Caution(f"{said}; a TTL of {longest} s is over {LONG_TTL_S} s: {WHY_TTL}")
        return said
