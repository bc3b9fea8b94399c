"""Everything `migrate plan` knows, gathered once by the inspectors (read-only sessions, describe calls,
read-only commands on the target host) and handed to the checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from migrate.adapters.dialect import Dialect
from migrate.capabilities.host_inspector import HostFacts
from migrate.capabilities.inspector import Account
from migrate.capabilities.rds_inspector import RdsFacts
from migrate.playbook import Playbook


@dataclass
class SourceFacts:
    dialect: Dialect
    variables: dict[str, Any]
    privileges: set[str]
    schemas: list[str]
    tables: list[dict]
    no_primary_key: list[str]
    long_transactions: list[dict]
    code: dict[str, list[dict]]
    collations: list[str]
    app_accounts: list[Account]
    app_grants: dict[str, list[str]]
    repl_grants: list[str] | None  # None: the account does not exist
    definers: list[Account]
    missing_definers: list[Account]
    rds_configuration: dict[str, Any] | None
    binlog_bytes_per_s: float
    unix_time: float
    missing_databases: list[str] = field(default_factory=list)  # named by seed.databases, absent here
    replicates_from: list[str] = field(default_factory=list)  # the source's own replication, if any
    carried_accounts: list[str] | None = None  # what `start` will carry (None: cannot tell, see app accounts)
    skipped_accounts: list[dict] = field(default_factory=list)
    gtid: dict[str, str] = field(default_factory=dict)  # inspector.gtid_history
    proxy_grantees: list[str] = field(default_factory=list)  # accounts holding a PROXY grant

    @property
    def data_bytes(self) -> int:
        return sum(int(t["bytes"] or 0) for t in self.tables)


@dataclass
class TargetFacts:
    dialect: Dialect
    variables: dict[str, Any]
    user_schemas: list[str]
    collations: set[str]
    unix_time: float
    replicates_from: list[str] = field(default_factory=list)
    filters: dict[str, str] = field(default_factory=dict)
    privileges: set[str] = field(default_factory=set)  # target.user's on *.*, its login roles' included
    may_grant_proxy: bool = False  # target.user holds PROXY ON ''@'%' WITH GRANT OPTION
    accounts: set[str] = field(default_factory=set)  # every account and role, as 'user'@'host'
    gtid: dict[str, str] = field(default_factory=dict)  # inspector.gtid_history


@dataclass
class PlanFacts:
    pb: Playbook
    source: SourceFacts | None
    source_error: str | None
    target: TargetFacts | None
    target_error: str | None
    host: HostFacts
    rds: RdsFacts | None
    repoint: tuple[bool, str]
    probe: tuple[str, str, str | None] | None  # (pass|warn|fail, evidence, fix)
    extra: dict[str, Any] = field(default_factory=dict)
