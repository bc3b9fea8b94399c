"""What the steps of one migration share: the playbook (immutable), its resolved endpoints, the two
servers in their roles, the replication links between them and the hosts' executors. Kept small on
purpose: run state lives in the runner, not here."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from pydantic import SecretStr

from migrate import secrets
from migrate.adapters import executor as executors
from migrate.adapters.db import Endpoint, Session, connect
from migrate.adapters.dialect import Dialect
from migrate.capabilities.switch import STEP_SLACK_S, Link, Server
from migrate.errors import BadInput
from migrate.playbook import Playbook, Tls
from migrate.runner.store import Store


@dataclass
class Migration:
    pb: Playbook
    path: str = "PLAYBOOK"  # the playbook's path, for the commands a message tells the user to run
    _host: executors.Executor | None = field(default=None, repr=False)
    _servers: dict[str, Server] = field(default_factory=dict, repr=False)
    _source_host: executors.Executor | None = field(default=None, repr=False)
    _rehearsal_host: executors.Executor | None = field(default=None, repr=False)

    @cached_property
    def store(self) -> Store:
        return Store(self.pb.run_dir)

    # -- endpoints ---------------------------------------------------------------------------------
    @cached_property
    def source_address(self) -> tuple[str, int]:
        src = self.pb.source
        if src.host:
            return src.host, src.port
        return self._rds_address()

    def _rds_address(self) -> tuple[str, int]:
        from migrate.adapters import aws

        rds = aws.client(self.pb.aws, "rds")
        try:
            instance = rds.describe_db_instances(DBInstanceIdentifier=self.pb.source.rds_instance_id)["DBInstances"][0]
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds; all mean "cannot resolve"
            raise BadInput(f"source.host is not set and RDS instance {self.pb.source.rds_instance_id} could not be "
                           f"looked up: {exc}", hint="set source.host, or check aws.region and credentials") from None
        endpoint = instance.get("Endpoint") or {}
        return endpoint["Address"], int(endpoint.get("Port") or self.pb.source.port)

    @cached_property
    def source_password(self) -> SecretStr:
        return secrets.resolve(self.pb.source, what="source.password", aws=self.pb.aws)

    @cached_property
    def target_password(self) -> SecretStr:
        return secrets.resolve(self.pb.target, what="target.password", aws=self.pb.aws)

    @cached_property
    def replication_password(self) -> SecretStr:
        return secrets.resolve(self.pb.replication, what="replication.password", aws=self.pb.aws)

    @cached_property
    def rehearsal_password(self) -> SecretStr:
        return secrets.resolve(self.rehearsal, what="rehearsal.password", aws=self.pb.aws)

    @property
    def rehearsal(self):
        """The playbook's `rehearsal:` section; refused when there is none."""
        if self.pb.rehearsal is None:
            raise BadInput("the playbook has no rehearsal: section: `migrate rehearse` needs a server of its own",
                           hint="add a rehearsal: section (server, ssh, datadir, service, seed, repoint); "
                                "playbooks/ has an example")
        return self.pb.rehearsal

    def source_endpoint(self) -> Endpoint:
        host, port = self.source_address
        return _endpoint(host, port, self.pb.source.user, self.source_password, self.pb.source.tls, "source",
                         rds=self.pb.source.kind == "rds")

    def target_endpoint(self) -> Endpoint:
        t = self.pb.target
        return _endpoint(t.host, t.port, t.user, self.target_password, t.tls, "target")

    def rehearsal_endpoint(self) -> Endpoint:
        r = self.rehearsal
        return _endpoint(r.host, r.port, r.user, self.rehearsal_password, r.tls, "rehearsal")

    @property
    def source_host_for_target(self) -> tuple[str, int]:
        """How the target reaches the source for replication (it may differ from how we do)."""
        host, port = self.source_address
        return self.pb.replication.source_host or host, port

    # -- sessions and hosts -----------------------------------------------------------------------
    def source(self, **kw) -> Session:
        return connect(self.source_endpoint(), **kw)

    def target(self, **kw) -> Session:
        return connect(self.target_endpoint(), **kw)

    def server(self, name: str) -> Server:
        """The source or the target as a role-free `Server` (one shared session each, closed by `close()`)."""
        if name not in self._servers:
            wait_s = self.pb.cutover.timeout_s + STEP_SLACK_S  # no statement of a switch waits longer than a step
            if name == "source":
                self._servers[name] = Server("source", self.source_endpoint, self.source_address,
                                             rds=self.pb.source.kind == "rds", wait_s=wait_s)
            elif name == "rehearsal":
                r = self.rehearsal
                self._servers[name] = Server("rehearsal", self.rehearsal_endpoint, (r.host, r.port), rds=False,
                                             wait_s=wait_s)
            else:
                t = self.pb.target
                self._servers[name] = Server("target", self.target_endpoint, (t.host, t.port), rds=False,
                                             wait_s=wait_s)
        return self._servers[name]

    @property
    def forward_link(self) -> Link:
        """How the target replicates from the source."""
        host, port = self.source_host_for_target
        tls = self.pb.source.tls
        return Link(host, port, self.pb.replication.user, lambda: self.replication_password, tls.mode != "disabled",
                    str(tls.ca_file) if tls.ca_file else None, self.pb.replication.mode)

    @property
    def reverse_link(self) -> Link:
        """How the source replicates from the target once the target is the primary (reverse replication)."""
        t = self.pb.target
        return Link(self.pb.replication.target_host or t.host, t.port, self.pb.replication.user,
                    lambda: self.replication_password, t.tls.mode != "disabled", str(t.tls.ca_file) if t.tls.ca_file else None,
                    self.pb.replication.mode)

    @cached_property
    def source_dialect(self) -> Dialect:
        with self.source() as s:
            return s.dialect

    @cached_property
    def target_dialect(self) -> Dialect:
        with self.target() as t:
            return t.dialect

    @property
    def target_host(self) -> executors.Executor:
        """Where seeding runs: the target's EC2 host over SSH, or this machine when target.ssh is null."""
        if self._host is None:
            self._host = executors.for_host(self.pb.target.ssh, label="target host")
        return self._host

    @property
    def source_host(self) -> executors.Executor:
        """The source's host (a self-managed source's, for the physical seed)."""
        if self._source_host is None:
            if self.pb.source.ssh is None:
                raise BadInput("the source's host is not reachable: source.ssh is not set",
                               hint="set source.ssh (the physical seed runs its backup tool there)")
            self._source_host = executors.for_host(self.pb.source.ssh, label="source host")
        return self._source_host

    @property
    def rehearsal_host(self) -> executors.Executor:
        """The rehearsal server's host over SSH, or this machine when rehearsal.ssh is null."""
        if self._rehearsal_host is None:
            self._rehearsal_host = executors.for_host(self.rehearsal.ssh, label="rehearsal host")
        return self._rehearsal_host

    def parameter_group_api(self):
        """The RDS source's parameter group through boto3 (write_block: parameter_group)."""
        from migrate.capabilities.write_block import ParameterGroupApi

        if self.pb.source.kind != "rds":
            raise BadInput("the source is not RDS: it has no DB parameter group",
                           hint="use cutover.write_block: read_only on a self-managed source")
        return ParameterGroupApi(self.pb.aws, self.pb.source.rds_instance_id)

    def close(self) -> None:
        for host in (self._source_host, self._rehearsal_host):
            if host is not None:
                host.close()
        self._source_host = self._rehearsal_host = None
        for server in self._servers.values():
            server.close()
        if self._host is not None:
            self._host.close()
            self._host = None


def _endpoint(host: str, port: int, user: str, password: SecretStr, tls: Tls, label: str, rds: bool = False) -> Endpoint:
    return Endpoint(host, port, user, password, tls=tls.mode, ca_file=str(tls.ca_file) if tls.ca_file else None,
                    label=label, rds=rds)
