"""Write blockers: stop the application's writes on the old primary (`cutover.write_block`), one module per method.

`for_server` picks the blocker for one server: the playbook's method, as that server allows it. A parameter group
belongs to RDS only, so a self-managed server in the old primary's role (the target, in a rollback) is blocked with
`read_only`, and an RDS server blocked by its parameter group is made writable again through it at promotion.
"""

from __future__ import annotations

from collections.abc import Callable

from migrate.capabilities.switch import Server
from migrate.capabilities.write_block.base import WriteBlocker, kill_and_wait, sessions_of
from migrate.capabilities.write_block.parameter_group import ParameterGroup, ParameterGroupApi
from migrate.capabilities.write_block.read_only import ReadOnly
from migrate.capabilities.write_block.revoke_and_kill import RevokeAndKill

__all__ = ["ParameterGroup", "ParameterGroupApi", "ReadOnly", "RevokeAndKill", "WriteBlocker", "for_server",
           "kill_and_wait", "sessions_of"]


def for_server(method: str, server: Server, users: list[str], timeout_s: float, *,
               parameter_group: Callable[[], ParameterGroupApi] | None = None) -> WriteBlocker:
    """`parameter_group`: the RDS instance's group API (built only when an RDS server needs it)."""
    if method == "revoke_and_kill":
        return RevokeAndKill(server, users, timeout_s)
    if method == "parameter_group" and server.rds and parameter_group is not None:
        return ParameterGroup(server, users, timeout_s, parameter_group())
    return ReadOnly(server, users, timeout_s)
