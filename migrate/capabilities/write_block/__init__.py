"""Write blockers: stop the application's writes on the old primary (`cutover.write_block`), one module per method.

`for_server` picks the blocker for one server: the playbook's method, as that server allows it. A parameter group
belongs to RDS only, so an EC2 server in the old primary's role (the target, in a rollback) is blocked with
`read_only`, and an RDS source blocked by its parameter group is made writable again through it at promotion. The
source itself is never blocked another way than the playbook says: parameter_group on a self-managed source is
refused.
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
               parameter_group: Callable[[], ParameterGroupApi]) -> WriteBlocker:
    """`parameter_group`: makes the RDS instance's group API (called only when the group is used)."""
    if method == "revoke_and_kill":
        return RevokeAndKill(server, users, timeout_s)
    if method == "parameter_group" and (server.rds or server.name == "source"):
        return ParameterGroup(server, users, timeout_s, parameter_group)
    return ReadOnly(server, users, timeout_s)
