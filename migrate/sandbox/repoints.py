"""How the sandbox wires each repoint method (`migrate sandbox up --repoint R`) so that it really moves the
application, and the application's endpoint that follows it:

    haproxy   HAProxy's runtime API on its admin socket (the default sandbox)
    command   `haproxy_tool.py point ...`: a script of the sandbox's (stdlib only) that sets HAProxy's
              server over the admin socket and shuts the sessions still on the old one
    ssh_file  two application hosts, each an sshd of its own whose commands start in its own directory (a
              machine of its own: the playbook's relative `path` lands there), each with a HAProxy in
              master-worker mode whose backend lives in `backend.cfg`; the template renders that backend,
              `check` checks it with `haproxy -c` during the gates, the reload reloads HAProxy gracefully
              (open connections stay open)
    route53   source and target on their own loopback addresses (127.0.0.2, 127.0.0.3) on one port; the
              zone's record starts as an A record to the source's; the application resolves the record
              through the Route53 API before each connection (moto serves no DNS)
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from migrate.adapters import aws as aws_adapter
from migrate.adapters.db import Endpoint
from migrate.runner import RunContext, Step
from migrate.sandbox import procs, sample_data
from migrate.sandbox.aws import RECORD
from migrate.sandbox.haproxy import BACKEND, SERVER, HaproxyServer
from migrate.sandbox.sshd import SshServer

if TYPE_CHECKING:
    from migrate.sandbox.sandbox import Options, Sandbox

LOOPBACK = {"source": "127.0.0.2", "target": "127.0.0.3"}  # route53: each server an address of its own
APP_HOSTS = (1, 2)  # ssh_file
BACKEND_FILE = "backend.cfg"


def bind_host(options: Options, server: str) -> str:
    return LOOPBACK.get(server, "127.0.0.1") if options.repoint == "route53" else "127.0.0.1"


def extra_ports(options: Options, ports: dict[str, int]) -> dict[str, int]:
    """Ports a method needs beyond the sandbox's own (route53: the target takes the source's port)."""
    if options.repoint == "route53":
        return {"target": ports["source"]}
    if options.repoint == "ssh_file":
        return {"haproxy2": procs.free_port(), **{f"app{i}_ssh": procs.free_port() for i in APP_HOSTS}}
    return {}


def haproxy_options(options: Options) -> dict[str, Any]:
    return {"backend_host": bind_host(options, "source"), "reloadable": options.repoint == "ssh_file"}


def app_hosts(sb: Sandbox) -> list[tuple[SshServer, HaproxyServer]]:
    """ssh_file's application hosts: (its sshd, its HAProxy); the first one's HAProxy is the sandbox's own."""
    if sb.options.repoint != "ssh_file":
        return []
    hosts = []
    for i in APP_HOSTS:
        haproxy = sb.haproxy if i == 1 else HaproxyServer(sb.dir / f"haproxy{i}", sb.ports[f"haproxy{i}"],
                                                         sb.ports["source"], reloadable=True)
        hosts.append((SshServer(sb.dir / f"app{i}", sb.ports[f"app{i}_ssh"], home=haproxy.base), haproxy))
    return hosts


def components(sb: Sandbox) -> list[tuple[str, Any]]:
    """The method's own processes (name, component with start/stop/running), for `down` and `status`."""
    out: list[tuple[str, Any]] = []
    for i, (ssh, haproxy) in enumerate(app_hosts(sb), start=1):
        out.append((f"app{i}_ssh", ssh))
        if haproxy.base != sb.haproxy.base:
            out.append((f"app{i}_haproxy", haproxy))
    return out


def detail(name: str) -> str:
    host = name[3]
    return (f"application host {host}'s SSH (the ssh_file repoint rewrites its backend.cfg)" if name.endswith("_ssh")
            else f"application host {host}'s HAProxy (an application endpoint)")


# -- up ----------------------------------------------------------------------------------------------


class StartAppHosts(Step):
    name = "app_hosts"
    timeout_s = 120.0

    def __init__(self, sb: Sandbox):
        self.sb = sb

    def describe(self) -> str:
        return ("start the application hosts of the ssh_file repoint: an sshd each, and the second host's HAProxy "
                "(master-worker, its backend in backend.cfg)")

    def done(self, ctx: RunContext) -> bool:
        return all(c.running() for _, c in components(self.sb))

    def run(self, ctx: RunContext) -> str:
        for _, component in components(self.sb):
            component.prepare()
            component.start()
        return "application hosts up: " + ", ".join(f"sshd 127.0.0.1:{ssh.port} in {ssh.home} (HAProxy "
                                                   f"127.0.0.1:{haproxy.port})" for ssh, haproxy in app_hosts(self.sb))


class AppRecord(Step):
    name = "app_record"
    timeout_s = 60.0

    def __init__(self, sb: Sandbox):
        self.sb = sb

    def describe(self) -> str:
        return f"make {RECORD} an A record to the source's address {self.sb.source.host} (TTL 5 s)"

    def done(self, ctx: RunContext) -> bool:
        return app_record(self.sb)["Type"] == "A"  # once an A record, a later `up` leaves it wherever it points

    def run(self, ctx: RunContext) -> str:
        route53 = aws_adapter.client(self.sb.aws.settings, "route53")
        now = app_record(self.sb)
        route53.change_resource_record_sets(HostedZoneId=self.sb.aws.zone_id(), ChangeBatch={"Changes": [
            {"Action": "DELETE", "ResourceRecordSet": now},
            {"Action": "CREATE", "ResourceRecordSet": {"Name": RECORD, "Type": "A", "TTL": 5,
                                                       "ResourceRecords": [{"Value": self.sb.source.host}]}}]})
        return f"{RECORD} is an A record to {self.sb.source.host} (it was {now['Type']} {now['ResourceRecords']})"


def app_record(sb: Sandbox) -> dict[str, Any]:
    route53 = aws_adapter.client(sb.aws.settings, "route53")
    sets = route53.list_resource_record_sets(HostedZoneId=sb.aws.zone_id(), StartRecordName=RECORD,
                                             MaxItems="5")["ResourceRecordSets"]
    return next(rs for rs in sets if rs["Name"] == RECORD and rs["Type"] in ("A", "CNAME"))


def steps(sb: Sandbox) -> list[Step]:
    return {"ssh_file": [StartAppHosts(sb)], "route53": [AppRecord(sb)]}.get(sb.options.repoint, [])


# -- the playbook ------------------------------------------------------------------------------------


TOOL = f"{sys.executable} -I -S {Path(__file__).with_name('haproxy_tool.py')}"  # stdlib only, no site: starts in ~20 ms


def playbook_repoint(sb: Sandbox) -> dict[str, Any]:
    """The cutover's repoint as `--repoint` names it, wired to the sandbox's own application tier."""
    method = sb.options.repoint
    if method == "command":
        return {"method": "command", "command": {
            "run": f"{TOOL} point {sb.haproxy.admin_socket} " "{host} {port}"}}
    if method == "ssh_file":
        return {"method": "ssh_file", "ssh_file": {
            "hosts": [{"host": "127.0.0.1", "port": ssh.port, "user": ssh.user, "key_file": str(ssh.client_key),
                       "known_hosts": str(ssh.known_hosts)} for ssh, _ in app_hosts(sb)],
            "path": BACKEND_FILE,  # relative: in each application host's own directory
            "template": sb.haproxy.backend_section("{host}", "{port}"),
            "check": "haproxy -c -q -f haproxy.cfg -f {file}",
            "reload": f"{TOOL} reload"}}
    if method == "route53":
        return {"method": "route53", "route53": {"zone_id": sb.aws.zone_id(), "record": RECORD, "ttl": 5}}
    return {"method": "haproxy", "haproxy": {"socket": str(sb.haproxy.admin_socket), "backend": BACKEND,
                                             "server": SERVER}}


def probe_endpoint(sb: Sandbox) -> dict[str, Any]:
    """Where the playbook's probe writes: HAProxy (the application's endpoint), or, with route53 (whose record no
    MySQL client resolves here), wherever the repoint points."""
    if sb.options.repoint == "route53":
        return {"host": None, "port": None}
    return {"host": "127.0.0.1", "port": sb.ports["haproxy"]}


def app_endpoint(sb: Sandbox, user: str = sample_data.APP_USER,
                 password: str | None = None) -> Callable[[], Endpoint]:
    """The application's database endpoint for AppWorkload, asked again before each connection: HAProxy, or
    (route53) the record's address read through the Route53 API, on the application's port."""
    secret = SecretStr(password if password is not None else sb.secret("app"))
    if sb.options.repoint != "route53":
        return lambda: Endpoint("127.0.0.1", sb.ports["haproxy"], user, secret, label="application")
    route53 = aws_adapter.client(sb.aws.settings, "route53")
    zone = sb.aws.zone_id()

    def resolve() -> Endpoint:
        sets = route53.list_resource_record_sets(HostedZoneId=zone, StartRecordName=RECORD,
                                                 MaxItems="1")["ResourceRecordSets"]
        return Endpoint(sets[0]["ResourceRecords"][0]["Value"], sb.ports["source"], user, secret,
                        label="application")

    return resolve


def describe_app(sb: Sandbox) -> str:
    if sb.options.repoint == "route53":
        return f"to the address of {RECORD} (read through Route53 before each connection), port {sb.ports['source']}"
    return f"through HAProxy (127.0.0.1:{sb.ports['haproxy']})"
