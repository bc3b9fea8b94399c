"""Repointers: point the application at the new primary (the cutover's point of no return).

`for_playbook` picks one by `cutover.repoint.method`; callers only see `Repointer`.
"""

from __future__ import annotations

from migrate.adapters.executor import Executor
from migrate.capabilities.repoint.base import Caution, RepointCheckFailed, Repointer, RepointFailed
from migrate.capabilities.repoint.command import CommandRepointer
from migrate.capabilities.repoint.haproxy import HaproxyRepointer
from migrate.capabilities.repoint.route53 import Route53Repointer
from migrate.capabilities.repoint.ssh_file import SshFileRepointer
from migrate.playbook import Aws, Playbook, Repoint

__all__ = ["Caution", "CommandRepointer", "HaproxyRepointer", "RepointCheckFailed", "RepointFailed", "Repointer",
           "Route53Repointer", "SshFileRepointer", "for_migration", "for_playbook"]


def for_playbook(repoint: Repoint, *, executor: Executor | None = None, aws: Aws | None = None,
                 app_port: int | None = None, wait_s: float = 60.0) -> Repointer:
    """The repointer the playbook's `cutover.repoint` names. `executor` runs a `command` repoint (default: this
    machine); `aws` is the playbook's (route53); `app_port` the port the application connects to (the source's),
    the only one a route53 record can lead to; `wait_s` how long a route53 change may take to be INSYNC."""
    if repoint.method == "route53":
        return Route53Repointer(repoint.route53, aws, port=app_port, insync_timeout_s=wait_s)
    if repoint.method == "ssh_file":
        return SshFileRepointer(repoint.ssh_file)
    if repoint.method == "command":
        return CommandRepointer(repoint.command, executor)
    return HaproxyRepointer(repoint.haproxy)


def for_migration(pb: Playbook, repoint: Repoint | None = None) -> Repointer:
    """`for_playbook` for `repoint` (default: the cutover's) with what the playbook gives it: its `aws` section, the
    source's port as the application's, and cutover.timeout_s as the bound of a wait the application waits through."""
    return for_playbook(repoint or pb.cutover.repoint, aws=pb.aws, app_port=pb.source.port,
                        wait_s=pb.cutover.timeout_s)
