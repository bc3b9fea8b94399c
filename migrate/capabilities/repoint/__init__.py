"""Repointers: point the application at the new primary (the cutover's point of no return).

`for_playbook` picks one by `cutover.repoint.method`; callers only see `Repointer`.
"""

from __future__ import annotations

from migrate.adapters.executor import Executor
from migrate.capabilities.repoint.base import RepointCheckFailed, Repointer, RepointFailed
from migrate.capabilities.repoint.command import CommandRepointer
from migrate.capabilities.repoint.haproxy import HaproxyRepointer
from migrate.errors import NotBuiltYet
from migrate.playbook import Repoint

__all__ = ["CommandRepointer", "HaproxyRepointer", "RepointCheckFailed", "RepointFailed", "Repointer",
           "for_playbook"]


def for_playbook(repoint: Repoint, *, executor: Executor | None = None) -> Repointer:
    """The repointer the playbook's `cutover.repoint` names (`executor` runs a `command` repoint;
    default: this machine)."""
    if repoint.method == "haproxy" and repoint.haproxy is not None:
        return HaproxyRepointer(repoint.haproxy)
    if repoint.method == "command" and repoint.command is not None:
        return CommandRepointer(repoint.command, executor)
    raise NotBuiltYet(f"repoint method '{repoint.method}' is not built yet; use haproxy or command",
                      hint="set cutover.repoint.method to haproxy (HAProxy's admin socket) or command "
                           "(your own script, called with {host} {port})")
