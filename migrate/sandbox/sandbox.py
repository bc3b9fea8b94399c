"""`migrate sandbox up|status|down`: real local servers standing in for RDS, EC2 and the app tier.

`up` is a workflow of the runner like any other: each component is a step whose `done()` asks the
component itself, so an interrupted `up` resumes where it stopped and a second `up` changes nothing.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from migrate import log
from migrate.adapters.db import connect, quote_string
from migrate.errors import BadInput, SandboxError
from migrate.playbook import load as load_playbook
from migrate.runner import RunContext, Runner, RunResult, Step, Store
from migrate.runner.store import ensure_private_dir, write_atomic
from migrate.sandbox import procs, rds, repoints, sample_data
from migrate.sandbox.aws import INSTANCE_ID, PARAMETER_GROUP, RECORD, MotoServer
from migrate.sandbox.haproxy import BACKEND, REHEARSAL_BACKEND, SERVER, HaproxyServer
from migrate.sandbox.mariadb import MariaDBServer, new_password, write_secret
from migrate.sandbox.options import REPOINTS, SOURCES, WRITE_BLOCKS, Options  # noqa: F401 - re-exported
from migrate.sandbox.rds_control import RdsApplier
from migrate.sandbox.sshd import SshServer
from migrate.sandbox.tls import make_certificates

DEFAULT_ROWS = 10_000
# A unix socket path must fit in 108 bytes; HAProxy binds "<path>.<pid>.tmp" first, so keep a margin.
MAX_DIR_CHARS = 108 - len("/haproxy/admin.sock") - len(".4194304.tmp") - 1
MANIFEST = "sandbox.json"
MASTER_USER = "admin"
TARGET_USER = "root"
SECRETS = ("source", "target", "repl", "app", "owner", "rdsadmin", "rdsrepl")
COMPONENTS = ("source", "replica", "target", "ssh", "haproxy", "aws", "rehearsal", "haproxy_rehearsal")
@dataclass
class Sandbox:
    """Where everything of one sandbox lives, from its directory and its manifest of ports."""

    dir: Path
    ports: dict[str, int]
    rows: int
    options: Options = Options()

    @classmethod
    def open(cls, directory: Path) -> Sandbox:
        directory = Path(directory).resolve()
        try:
            manifest = json.loads((directory / MANIFEST).read_text())
        except FileNotFoundError:
            raise BadInput(f"{directory} is not a sandbox (no {MANIFEST})",
                           hint=f"start one with: migrate sandbox up --dir {directory}") from None
        return cls(directory, manifest["ports"], manifest["rows"], Options(**manifest.get("options", {})))

    @classmethod
    def allocate(cls, directory: Path, rows: int, options: Options = Options()) -> Sandbox:  # noqa: B008 - frozen
        ports = {name: procs.free_port() for name in COMPONENTS}
        ports.update(repoints.extra_ports(options, ports))
        return cls(Path(directory).resolve(), ports, rows, options)

    def save_manifest(self) -> None:
        write_atomic(self.dir / MANIFEST, json.dumps({"ports": self.ports, "rows": self.rows,
                                                      "options": self.options.as_dict()}, indent=2))

    # -- components --------------------------------------------------------------------------------
    @property
    def tls_dir(self) -> Path:
        return self.dir / "tls"

    def _tls_options(self) -> dict[str, str]:
        """Every server can speak TLS with the sandbox CA's certificate; the playbook decides who uses it."""
        return {"ssl-ca": str(self.tls_dir / "ca.pem"), "ssl-cert": str(self.tls_dir / "server-cert.pem"),
                "ssl-key": str(self.tls_dir / "server-key.pem")}

    # Every sandbox server applies replicated transactions in parallel, as a DBA tunes a replica that must keep
    # up: one applier thread commits (and syncs) one transaction at a time, falls behind a primary that groups
    # its commits, and what it has not applied when writes are blocked is the cutover's write downtime.
    PARALLEL_APPLY = {"slave-parallel-threads": "4", "slave-parallel-mode": "optimistic"}

    @property
    def source(self) -> MariaDBServer:
        # log-slave-updates: after a cutover the source follows the target; what it applies from there must reach
        # its own binary log, or its read replicas (and a seed taken from one after a rollback) never get it.
        return MariaDBServer("source", self.dir / "source", self.ports["source"], server_id=1,
                             options={"log-bin-trust-function-creators": "1", "log-slave-updates": "1",
                                      **self.PARALLEL_APPLY, **self._tls_options()},
                             host=repoints.bind_host(self.options, "source"))

    @property
    def replica(self) -> MariaDBServer:
        """Stands in for the endpoint of an RDS read replica of the source (seed.consistency: replica)."""
        return MariaDBServer("replica", self.dir / "replica", self.ports["replica"], server_id=3,
                             options={"read-only": "1", "log-slave-updates": "1",
                                      "log-bin-trust-function-creators": "1", **self.PARALLEL_APPLY,
                                      **self._tls_options()})

    @property
    def target(self) -> MariaDBServer:
        return MariaDBServer("target", self.dir / "target", self.ports["target"], server_id=2,
                             options={"read-only": "1", "log-slave-updates": "1", **self.PARALLEL_APPLY,
                                      **self._tls_options()}, host=repoints.bind_host(self.options, "target"))

    @property
    def rehearsal(self) -> MariaDBServer:
        """The fire drill's server, which `migrate rehearse` seeds (a clone of the target, or a dump of the
        source): its root and migrate's accounts are the target's, whatever the last seed put there."""
        return MariaDBServer("rehearsal", self.dir / "rehearsal", self.ports["rehearsal"], server_id=4,
                             options={"read-only": "1", "log-slave-updates": "1", **self.PARALLEL_APPLY,
                                      **self._tls_options()})

    @property
    def ssh(self) -> SshServer:
        return SshServer(self.dir / "ssh", self.ports["ssh"])

    @property
    def haproxy(self) -> HaproxyServer:
        return HaproxyServer(self.dir / "haproxy", self.ports["haproxy"], self.ports["source"],
                             self.ports.get("haproxy_rehearsal"), **repoints.haproxy_options(self.options))

    @property
    def aws(self) -> MotoServer:
        return MotoServer(self.dir / "aws", self.ports["aws"])

    @property
    def rds_applier(self) -> RdsApplier:
        """What the RDS instance's parameter group says, applied to the source (rds_control.py)."""
        return RdsApplier(self.dir / "rds_control", self.dir)

    @property
    def applies_parameter_group(self) -> bool:
        """Only a sandbox whose write block is parameter_group runs the applier: it polls moto all the time (about
        a tenth of a core with moto's share, measured), which every other sandbox, the test suite's, would pay."""
        return self.options.write_block == "parameter_group"

    def secret_file(self, name: str) -> Path:
        return self.dir / "secrets" / f"{name}.pw"

    def secret(self, name: str) -> str:
        return self.secret_file(name).read_text().strip()

    @property
    def playbook_path(self) -> Path:
        return self.dir / "playbook.yml"

    def master(self):
        return connect(self.source.endpoint(MASTER_USER, self.secret("source")))


# ------------------------------------------------------------------------------------------------
# The steps of `sandbox up`.


class _SandboxStep(Step):
    timeout_s = 120.0

    def __init__(self, sandbox: Sandbox):
        self.sb = sandbox


class AllocatePorts(_SandboxStep):
    name = "allocate"

    def describe(self) -> str:
        return "pick free loopback ports, generate the sandbox's passwords (0600 files) and its TLS certificates"

    def done(self, ctx: RunContext) -> bool:
        return (self.sb.dir / MANIFEST).exists() and all(self.sb.secret_file(s).exists() for s in SECRETS) \
            and (self.sb.tls_dir / "server-key.pem").exists()

    def run(self, ctx: RunContext) -> str:
        self.sb.save_manifest()
        make_certificates(self.sb.tls_dir)
        for name in SECRETS:
            if not self.sb.secret_file(name).exists():
                write_secret(self.sb.secret_file(name), new_password())
        return f"ports {self.sb.ports} reserved and passwords written under {self.sb.dir / 'secrets'}"


class StartServer(_SandboxStep):
    def __init__(self, sandbox: Sandbox, which: str):
        super().__init__(sandbox)
        self.which = which
        self.name = f"{which}_server"

    @property
    def server(self) -> MariaDBServer:
        return getattr(self.sb, self.which)

    def describe(self) -> str:
        return f"start the {self.which} MariaDB server on {self.server.host}:{self.server.port}"

    def done(self, ctx: RunContext) -> bool:
        return self.server.initialized() and self.server.running()

    def run(self, ctx: RunContext) -> str:
        fresh = not self.server.initialized()
        if fresh:
            self.server.init()
        else:
            self.server.start()
        return (f"{self.which} server {'created and ' if fresh else ''}running on {self.server.host}:{self.server.port} "
                f"(datadir {self.server.datadir})")


class EmulateRds(_SandboxStep):
    name = "rds_emulation"

    def describe(self) -> str:
        return f"give the source RDS's master user ({MASTER_USER}, no SUPER/RELOAD) and the mysql.rds_* procedures"

    def done(self, ctx: RunContext) -> bool:
        with self.sb.source.root() as root:
            return rds.installed(root, MASTER_USER)

    def run(self, ctx: RunContext) -> str:
        with self.sb.source.root() as root:
            rds.install(root, master_user=MASTER_USER, master_password=self.sb.secret("source"),
                        rdsadmin_password=self.sb.secret("rdsadmin"))
        with self.sb.master() as master:
            master.run("CALL mysql.rds_set_configuration('binlog retention hours', 24)")
        return (f"source behaves like RDS for MariaDB: master user {MASTER_USER} without SUPER or RELOAD, "
                f"{len(rds.PROCEDURES)} mysql.rds_* procedures, binlog retention 24 h")


class SelfManagedSource(_SandboxStep):
    name = "source_accounts"

    def describe(self) -> str:
        return (f"give the self-managed source an administrator {MASTER_USER} (ALL PRIVILEGES WITH GRANT OPTION) and "
                f"the target's account {TARGET_USER}@127.0.0.1, which a physical clone carries to the target")

    def done(self, ctx: RunContext) -> bool:
        with self.sb.source.root() as root:
            return root.value("SELECT COUNT(*) FROM mysql.user WHERE (User, Host) IN ((%s, '%%'), (%s, '127.0.0.1'))",
                              (MASTER_USER, TARGET_USER)) == 2

    def run(self, ctx: RunContext) -> str:
        with self.sb.source.root() as root:
            root.run(root.dialect.create_user(MASTER_USER, self.sb.secret("source"), if_not_exists=True))
            root.run(f"GRANT ALL PRIVILEGES ON *.* TO {quote_string(MASTER_USER)}@'%' WITH GRANT OPTION")
            admin_account(root, self.sb.secret("target"), reset_binlog=False)
        return (f"self-managed source: administrator {MASTER_USER} with ALL PRIVILEGES, and {TARGET_USER}@127.0.0.1 "
                "with the target's password (the physical seed copies the source's accounts to the target)")


class PrepareTarget(_SandboxStep):
    name = "target_account"

    def describe(self) -> str:
        return f"create the target's administrative account {TARGET_USER}@127.0.0.1 for migrate"

    def done(self, ctx: RunContext) -> bool:
        if self._clone_of_source() and \
                self.sb.target.root_password_file.read_text() != self.sb.source.root_password_file.read_text():
            return False
        try:
            connect(self.sb.target.endpoint(TARGET_USER, self.sb.secret("target")), attempts=1).close()
        except Exception:  # noqa: BLE001 - cannot log in means not done
            return False
        return True

    def _clone_of_source(self) -> bool:
        """A self-managed source is seeded physically: the target becomes a copy of it, root's password too."""
        return self.sb.options.source == "self-managed"

    def run(self, ctx: RunContext) -> str:
        with self.sb.target.root() as root:
            admin_account(root, self.sb.secret("target"))
            if self._clone_of_source():
                source_root = self.sb.source.root_password_file.read_text().strip()
                root.run("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (source_root,))
                write_secret(self.sb.target.root_password_file, source_root)
        same = " (root's password is the source's, as a physical copy of the source makes it)" \
            if self._clone_of_source() else ""
        return f"target account {TARGET_USER}@127.0.0.1 can administer the target{same}"


def admin_account(root, password: str, *, reset_binlog: bool = True) -> None:
    """migrate's administrative account on a server of the EC2 host, and an empty binary log (nothing of the
    server's own to replicate; not on a self-managed source, whose binary log is the migration's)."""
    account = f"{quote_string(TARGET_USER)}@'127.0.0.1'"
    root.run(root.dialect.create_user(TARGET_USER, password, "127.0.0.1", if_not_exists=True))
    root.run(f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION")
    root.run(f"GRANT PROXY ON ''@'%' TO {account} WITH GRANT OPTION")  # to carry the source's proxy grants
    if reset_binlog:
        root.run(root.dialect.reset_binary_logs())


class ReplicaFollowsSource(_SandboxStep):
    name = "replica_follows_source"

    def describe(self) -> str:
        return "make the replica server follow the source from its first binlog, as an RDS read replica does"

    def done(self, ctx: RunContext) -> bool:
        with self.sb.replica.root() as root:
            status = root.dialect.parse_replica_status(root.one(root.dialect.replica_status()))
        return status.configured and status.healthy

    def run(self, ctx: RunContext) -> str:
        with self.sb.source.root() as root:
            root.run(root.dialect.create_user("rdsrepladmin", self.sb.secret("rdsrepl"), if_not_exists=True))
            root.run("GRANT REPLICATION SLAVE ON *.* TO 'rdsrepladmin'@'%'")
            first = root.run("SHOW BINARY LOGS")[0]["Log_name"]
        with self.sb.replica.root() as root:
            d = root.dialect
            root.run(d.stop_replica())
            for stmt in d.change_source(self.sb.source.host, self.sb.ports["source"], "rdsrepladmin", self.sb.secret("rdsrepl"),
                                        log_file=first, log_pos=4):
                root.run(stmt)
            root.run(d.start_replica())
        return f"replica server on 127.0.0.1:{self.sb.ports['replica']} follows the source from {first}"


class PrepareRehearsal(_SandboxStep):
    name = "rehearsal_account"

    def describe(self) -> str:
        return (f"give the rehearsal server the target's administrative account {TARGET_USER}@127.0.0.1 and root "
                "password (a clone of the target, which `migrate rehearse` puts there, carries the same)")

    def done(self, ctx: RunContext) -> bool:
        r = self.sb.rehearsal
        if r.root_password_file.read_text() != self.sb.target.root_password_file.read_text():
            return False
        try:
            connect(r.endpoint(TARGET_USER, self.sb.secret("target")), attempts=1).close()
        except Exception:  # noqa: BLE001 - cannot log in means not done
            return False
        return True

    def run(self, ctx: RunContext) -> str:
        r = self.sb.rehearsal
        target_root = self.sb.target.root_password_file.read_text().strip()
        with r.root() as root:
            admin_account(root, self.sb.secret("target"))
            root.run("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (target_root,))
        write_secret(r.root_password_file, target_root)
        return f"rehearsal server on 127.0.0.1:{r.port} takes {TARGET_USER}@127.0.0.1 like the target"


class StartSsh(_SandboxStep):
    name = "ssh_host"

    def describe(self) -> str:
        return f"start an OpenSSH server on 127.0.0.1:{self.sb.ports['ssh']} as the target's EC2 host"

    def done(self, ctx: RunContext) -> bool:
        return self.sb.ssh.known_hosts.exists() and self.sb.ssh.running()

    def run(self, ctx: RunContext) -> str:
        self.sb.ssh.prepare()
        self.sb.ssh.start()
        return f"sshd on 127.0.0.1:{self.sb.ssh.port} accepts {self.sb.ssh.client_key}; known_hosts written"


class StartAws(_SandboxStep):
    name = "aws"

    def describe(self) -> str:
        return f"start a moto server on 127.0.0.1:{self.sb.ports['aws']} with the RDS instance, parameter group, " \
               "security group and Route53 zone"

    def done(self, ctx: RunContext) -> bool:
        return self.sb.aws.running() and self.sb.aws.provisioned()

    def run(self, ctx: RunContext) -> str:
        moto = self.sb.aws
        moto.prepare()
        if moto.running():  # up but not provisioned: a crash mid-provisioning; start clean
            moto.stop()
        moto.start()
        with self.sb.source.root() as root:
            version = root.value("SELECT VERSION()").split("-")[0]
        moto.provision(source_port=self.sb.ports["source"], master_user=MASTER_USER,
                       master_password=self.sb.secret("source"), engine_version=version)
        return f"moto at {moto.endpoint_url} holds RDS instance {INSTANCE_ID} (mariadb {version}) and zone {RECORD}"


class StartRdsApplier(_SandboxStep):
    name = "rds_applier"

    def describe(self) -> str:
        return "start the process that applies the RDS instance's parameter group (dynamic parameters) to the source"

    def done(self, ctx: RunContext) -> bool:
        return self.sb.rds_applier.running()

    def run(self, ctx: RunContext) -> str:
        applier = self.sb.rds_applier
        applier.start()
        delay = applier.delay()
        return (f"parameter group {PARAMETER_GROUP}'s read_only reaches the source "
                f"{'never' if delay is None else f'{delay:g} s after a change'} "
                f"(migrate sandbox rds-applier --dir {self.sb.dir} --delay SECONDS|never)")


class LoadSampleData(_SandboxStep):
    name = "sample_data"
    timeout_s = 1800.0

    def describe(self) -> str:
        return f"create the shop schema, its accounts and {self.sb.rows:,} orders on the source"

    def done(self, ctx: RunContext) -> bool:
        with self.sb.source.root() as root:
            return sample_data.loaded(root, self.sb.rows)

    def run(self, ctx: RunContext) -> str:
        with self.sb.master() as master:
            sample_data.create_accounts(master, app_password=self.sb.secret("app"),
                                        owner_password=self.sb.secret("owner"))
        owner_ep = self.sb.source.endpoint(sample_data.OWNER_USER, self.sb.secret("owner"))
        with connect(owner_ep, database=sample_data.SCHEMA) as owner:
            ctx.on_cancel(owner.close)
            sample_data.load(owner, self.sb.rows,
                             progress=lambda done, total: ctx.progress("loading orders", done=done, total=total))
        return (f"schema {sample_data.SCHEMA} loaded with {self.sb.rows:,} orders, a trigger, a view and a routine "
                f"owned by {sample_data.OWNER_USER}; application account {sample_data.APP_USER}")


class StartHaproxy(_SandboxStep):
    name = "haproxy"

    def describe(self) -> str:
        return f"start HAProxy on 127.0.0.1:{self.sb.ports['haproxy']} as the application endpoint -> source"

    def done(self, ctx: RunContext) -> bool:
        return self.sb.haproxy.running()

    def run(self, ctx: RunContext) -> str:
        self.sb.haproxy.prepare()
        self.sb.haproxy.start()
        return (f"application endpoint 127.0.0.1:{self.sb.haproxy.port} routes to the source (backend {BACKEND}); "
                f"the rehearsal's endpoint 127.0.0.1:{self.sb.haproxy.rehearsal_port} too (backend {REHEARSAL_BACKEND})")


class WritePlaybook(_SandboxStep):
    name = "playbook"

    def describe(self) -> str:
        return f"write {self.sb.playbook_path}, a playbook that works as written"

    def done(self, ctx: RunContext) -> bool:
        if not self.sb.playbook_path.exists():
            return False
        try:
            load_playbook(self.sb.playbook_path)
        except Exception:  # noqa: BLE001 - unreadable means write it again
            return False
        return True

    def run(self, ctx: RunContext) -> str:
        text = "# Written by `migrate sandbox up`: the sandbox's migration, working as written.\n" + \
               yaml.safe_dump(playbook_dict(self.sb), sort_keys=False, default_flow_style=False)
        write_atomic(self.sb.playbook_path, text)
        load_playbook(self.sb.playbook_path)
        return f"playbook written to {self.sb.playbook_path}"


def playbook_dict(sb: Sandbox) -> dict[str, Any]:
    ssh = sb.ssh
    target_ssh = {"host": "127.0.0.1", "port": ssh.port, "user": ssh.user, "key_file": str(ssh.client_key),
                  "known_hosts": str(ssh.known_hosts)}
    return {
        "name": "sandbox",
        "state_dir": str(sb.dir / "state"),
        "aws": {"region": sb.aws.settings.region, "endpoint_url": sb.aws.endpoint_url,
                "credentials_file": str(sb.aws.credentials_file)},
        "source": source_dict(sb, dict(target_ssh)),  # the same sshd stands for both hosts
        "target": {"host": sb.target.host, "port": sb.ports["target"], "user": TARGET_USER,
                   "password_file": str(sb.secret_file("target")), "tls": {"mode": "disabled"},
                   "ssh": target_ssh,
                   "datadir": str(sb.target.datadir), **_physical_target(sb)},
        "replication": {"user": "repl", "password_file": str(sb.secret_file("repl"))},
        "seed": {"method": "dump" if sb.options.source == "rds" else "physical", "tool": "auto", "threads": 4,
                 "databases": None, "consistency": "auto",
                 "replica_host": "127.0.0.1", "replica_port": sb.ports["replica"]},
        "cutover": {"max_lag_s": 1, "stable_for_s": 3, "write_block": sb.options.write_block,
                    "app_users": [sample_data.APP_USER], "timeout_s": 30, "repoint": repoint_dict(sb)},
        "probe": {"enabled": True, "rate": 50, **repoints.probe_endpoint(sb),
                  "user": sample_data.APP_USER, "password_file": str(sb.secret_file("app"))},
        "rehearsal": rehearsal_dict(sb, target_ssh),
    }


def source_dict(sb: Sandbox, ssh: dict[str, Any]) -> dict[str, Any]:
    """RDS (reached through its instance id and master user), or a self-managed MariaDB on an EC2 host of its own,
    administered by an account with every privilege and reached over SSH for the physical seed (the sandbox's
    sshd stands for that host too)."""
    common = {"host": sb.source.host, "port": sb.ports["source"], "user": MASTER_USER,
              "password_file": str(sb.secret_file("source")), "tls": {"mode": "disabled"}}
    if sb.options.source == "rds":
        return {"kind": "rds", "rds_instance_id": INSTANCE_ID, **common}
    return {"kind": "mysql", **common, "ssh": ssh, "datadir": str(sb.source.datadir)}


def _physical_target(sb: Sandbox) -> dict[str, Any]:
    """A physical seed replaces the target's datadir: how its host stops and starts the server."""
    if sb.options.source == "rds":
        return {}
    control = f"{sys.executable} -m migrate sandbox server {{}} --dir {sb.dir} --name target"
    return {"service": {"stop": control.format("stop"), "start": control.format("start")}}


def repoint_dict(sb: Sandbox) -> dict[str, Any]:
    """The cutover's repoint as `--repoint` names it, wired to the sandbox's own application tier."""
    return repoints.playbook_repoint(sb)


def rehearsal_dict(sb: Sandbox, ssh: dict[str, Any]) -> dict[str, Any]:
    """The rehearsal server on the same EC2 host as the target, cloned from it, behind HAProxy's second backend."""
    control = f"{sys.executable} -m migrate sandbox server {{}} --dir {sb.dir} --name rehearsal"
    return {"host": "127.0.0.1", "port": sb.ports["rehearsal"], "user": TARGET_USER,
            "password_file": str(sb.secret_file("target")), "tls": {"mode": "disabled"}, "ssh": ssh,
            "datadir": str(sb.rehearsal.datadir),
            "service": {"stop": control.format("stop"), "start": control.format("start")},
            "seed": "clone_target",
            "repoint": {"method": "haproxy", "haproxy": {"socket": str(sb.haproxy.admin_socket),
                                                         "backend": REHEARSAL_BACKEND, "server": SERVER}},
            "probe_host": "127.0.0.1", "probe_port": sb.ports["haproxy_rehearsal"], "teardown": False}


def up_steps(sb: Sandbox) -> list[Step]:
    rds_source = sb.options.source == "rds"
    return [AllocatePorts(sb), StartServer(sb, "source"), EmulateRds(sb) if rds_source else SelfManagedSource(sb),
            StartServer(sb, "replica"), ReplicaFollowsSource(sb), StartServer(sb, "target"),
            PrepareTarget(sb), StartServer(sb, "rehearsal"), PrepareRehearsal(sb), StartSsh(sb), StartAws(sb),
            *([StartRdsApplier(sb)] if sb.applies_parameter_group else []), LoadSampleData(sb), StartHaproxy(sb),
            *repoints.steps(sb), WritePlaybook(sb)]


# ------------------------------------------------------------------------------------------------
# The three commands.


def up(directory: Path, rows: int | None = None, options: Options | None = None) -> tuple[Sandbox, RunResult]:
    directory = Path(directory).resolve()
    if (directory / MANIFEST).exists():
        sb = Sandbox.open(directory)
        if rows is not None and rows != sb.rows:
            raise BadInput(f"the sandbox in {directory} was made with --rows {sb.rows}",
                           hint=f"run `migrate sandbox down --dir {directory}` first to change it")
        if options is not None and options != sb.options:
            raise BadInput(f"the sandbox in {directory} was made with {sb.options.as_dict()}, not "
                           f"{options.as_dict()}", hint=f"run `migrate sandbox down --dir {directory}` first to "
                                                        "change it")
    else:
        if len(str(directory)) > MAX_DIR_CHARS:
            raise BadInput(f"{directory} is too long for the sandbox's unix sockets ({len(str(directory))} "
                           f"characters, at most {MAX_DIR_CHARS})", hint="pass a shorter --dir, such as /tmp/sandbox")
        if directory.exists() and any(directory.iterdir()):
            raise BadInput(f"{directory} exists and is not a sandbox; refusing to use it",
                           hint="pass an empty or new directory to --dir")
        ensure_private_dir(directory)
        sb = Sandbox.allocate(directory, DEFAULT_ROWS if rows is None else rows, options or Options())
    runner = Runner(Store(directory), "sandbox-up", up_steps(sb), rollback_on_failure=False,
                    resume_hint=f"fix the cause, then rerun `migrate sandbox up --dir {directory}`: it resumes")
    return sb, runner.run()


@contextmanager
def temporary(rows: int | None = None, *, prefix: str = "mig-", options: Options | None = None) -> Iterator[Sandbox]:
    """A sandbox in a fresh short directory under /tmp, brought down and removed afterwards, whatever
    happened (tests and benchmarks that need servers of their own)."""
    parent = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    directory = parent / "sb"
    try:
        sb, _ = up(directory, rows, options)
        yield sb
    finally:
        if (directory / MANIFEST).exists():
            down(directory)
        shutil.rmtree(parent, ignore_errors=True)


def status(directory: Path) -> dict[str, Any]:
    sb = Sandbox.open(directory)
    components: dict[str, Any] = {}
    for name in ("source", "replica", "target", "rehearsal"):
        server: MariaDBServer = getattr(sb, name)
        entry: dict[str, Any] = {"running": server.running(), "address": f"{server.host}:{server.port}",
                                 **({"optional": True} if name == "rehearsal" else {})}  # rehearsal.teardown stops it
        if entry["running"]:
            with server.root() as root:
                dialect = root.dialect
                entry["version"] = root.value("SELECT VERSION()")
            entry["dialect"] = dialect.name + (" (RDS-like)" if name == "source" and sb.options.source == "rds"
                                               else "")
        components[name] = entry
    if sb.options.source == "self-managed":
        components["source"]["role"] = "a self-managed server on its EC2 host (SSH: the sandbox's sshd)"
    components["ssh"] = {"running": sb.ssh.running(), "address": f"127.0.0.1:{sb.ssh.port}",
                         "known_hosts": str(sb.ssh.known_hosts)}
    components["haproxy"] = {"running": sb.haproxy.running(), "address": f"127.0.0.1:{sb.haproxy.port}",
                             "admin_socket": str(sb.haproxy.admin_socket)}
    components["aws"] = {"running": sb.aws.running(), "endpoint_url": sb.aws.endpoint_url}
    for name, component in repoints.components(sb):
        components[name] = {"running": component.running(), "address": f"127.0.0.1:{component.port}",
                            "detail": repoints.detail(name)}
    if sb.applies_parameter_group:
        applier = sb.rds_applier
        delay = applier.delay()
        components["rds_applier"] = {"running": applier.running(), "delay": "never" if delay is None else delay,
                                     "error": applier.state().get("error"), "log": str(applier.log_file)}
    return {"dir": str(sb.dir), "playbook": str(sb.playbook_path), "rows": sb.rows, "options": sb.options.as_dict(),
            "components": components,
            "all_running": all(c["running"] for c in components.values() if not c.get("optional"))}


def down(directory: Path) -> list[str]:
    """Stop every process of the sandbox and delete its directory. Returns what was stopped."""
    directory = Path(directory).resolve()
    if not (directory / MANIFEST).exists():
        if not directory.exists():
            return []
        raise BadInput(f"{directory} is not a sandbox (no {MANIFEST}); refusing to delete it")
    sb = Sandbox.open(directory)
    stopped = []
    applier = (("rds_applier", sb.rds_applier),) if sb.applies_parameter_group else ()
    for name, component in (*repoints.components(sb), ("haproxy", sb.haproxy), *applier, ("aws", sb.aws),
                            ("ssh", sb.ssh),
                            ("rehearsal", sb.rehearsal), ("target", sb.target),
                            ("replica", sb.replica), ("source", sb.source)):
        try:
            component.stop()
            stopped.append(name)
        except SandboxError as exc:
            log.get().warning("component did not stop cleanly", component=name, error=str(exc))
    for pid in procs.processes_mentioning(str(directory)):  # anything a crash orphaned
        procs.stop(pid, timeout=10)
        stopped.append(f"pid {pid}")
    shutil.rmtree(directory)
    return stopped
