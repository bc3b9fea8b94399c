"""`write_block: parameter_group`, the block RDS allows: `read_only = 1` in the instance's custom DB parameter group
(boto3 `modify_db_parameter_group`, ApplyMethod immediate), then wait until the server itself reads
`@@global.read_only = 1` (AWS applies a change when it gets to it: that latency is AWS's, and the block's
downtime), then `mysql.rds_kill` the application's sessions and wait until they are gone.

What the group held before is saved first (in the run state, and in the migration's data for a later
`migrate rollback`): release puts it back, by value, or by `reset_db_parameter_group` when the group did not set it
(the engine default), and waits until the server is writable again. A default parameter group cannot be modified.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from migrate.adapters import aws
from migrate.adapters.db import Session
from migrate.capabilities.switch import Server
from migrate.capabilities.write_block.base import WriteBlocker, elapsed_ms, kill_and_wait, sessions_of
from migrate.errors import Refused, StepFailed
from migrate.playbook import Aws
from migrate.runner import RunContext

PARAMETER = "read_only"
POLL_S = 0.02


class AwsFailed(StepFailed):
    """An RDS API call failed."""


class ParameterGroupApi:
    """The RDS instance's DB parameter group, through boto3."""

    def __init__(self, settings: Aws, instance_id: str):
        self.settings, self.instance_id = settings, instance_id
        self._client = None

    def _call(self, what: str, operation: str, **kw) -> dict[str, Any]:
        if self._client is None:
            self._client = aws.client(self.settings, "rds")
        try:
            return getattr(self._client, operation)(**kw)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise AwsFailed(f"RDS refused to {what}: {error.get('Code', '?')}: {error.get('Message', '')}".rstrip(),
                            hint="check the AWS credentials' rights (rds:DescribeDBInstances, "
                                 "rds:DescribeDBParameters, rds:ModifyDBParameterGroup, rds:ResetDBParameterGroup) "
                                 "and aws.region") from None
        except BotoCoreError as exc:
            raise AwsFailed(f"cannot {what}: {exc}", hint="check the network path to the RDS API and aws.*") from None

    def group(self) -> str:
        found = self._call(f"describe RDS instance {self.instance_id}", "describe_db_instances",
                           DBInstanceIdentifier=self.instance_id)["DBInstances"][0]
        groups = found.get("DBParameterGroups") or []
        if not groups:
            raise Refused(f"RDS instance {self.instance_id} has no DB parameter group",
                          hint="attach a custom parameter group to it (a reboot applies that)")
        return groups[0]["DBParameterGroupName"]

    def sharing(self, group: str) -> list[str]:
        """The other RDS instances that use `group`: a change to it reaches them too."""
        others, marker = [], None
        while True:
            page = self._call("list the RDS instances", "describe_db_instances", **({"Marker": marker} if marker else {}))
            others += [i["DBInstanceIdentifier"] for i in page.get("DBInstances", [])
                       if i["DBInstanceIdentifier"] != self.instance_id
                       and group in {g["DBParameterGroupName"] for g in i.get("DBParameterGroups") or []}]
            marker = page.get("Marker")
            if not marker:
                return sorted(others)

    def user_value(self, group: str, name: str) -> str | None:
        """The value the group sets for `name`, or None when it leaves the engine default."""
        marker = None
        while True:
            page = self._call(f"read parameter group {group}", "describe_db_parameters", DBParameterGroupName=group,
                              Source="user", **({"Marker": marker} if marker else {}))
            for p in page.get("Parameters", []):
                if p["ParameterName"] == name:
                    return p.get("ParameterValue")
            marker = page.get("Marker")
            if not marker:
                return None

    def set(self, group: str, name: str, value: str) -> None:
        self._call(f"set {name}={value} in parameter group {group}", "modify_db_parameter_group",
                   DBParameterGroupName=group,
                   Parameters=[{"ParameterName": name, "ParameterValue": value, "ApplyMethod": "immediate"}])

    def reset(self, group: str, name: str) -> None:
        self._call(f"reset {name} in parameter group {group}", "reset_db_parameter_group", DBParameterGroupName=group,
                   Parameters=[{"ParameterName": name, "ApplyMethod": "immediate"}])


class ParameterGroup(WriteBlocker):
    method = "parameter_group"

    def __init__(self, server: Server, users: list[str], timeout_s: float, api: Callable[[], ParameterGroupApi]):
        super().__init__(server, users, timeout_s)
        self._api, self._made = api, None

    @property
    def api(self) -> ParameterGroupApi:
        if not self.server.rds:
            raise Refused(f"{self.server.name} is not RDS: it has no DB parameter group",
                          hint="use cutover.write_block: read_only on a self-managed source")
        if self._made is None:
            self._made = self._api()
        return self._made

    def describe(self) -> str:
        if not self.server.rds:
            return f"refused: {self.server.name} is not RDS, it has no DB parameter group (use read_only)"
        return (f"on {self.server.name}: set read_only=1 in RDS instance {self.api.instance_id}'s parameter group "
                f"(ApplyMethod immediate), wait at most {self.timeout_s:g} s until the server reads read_only = 1, "
                f"then mysql.rds_kill the sessions of {', '.join(self.users) or '(none)'} and wait until they are gone")

    def _own_group(self) -> str:
        """The instance's parameter group, if read_only may be set there: not a default group, not one other
        instances use (they would stop taking writes too)."""
        group = self.api.group()
        if group.startswith("default."):
            raise Refused(f"RDS instance {self.api.instance_id} uses the default parameter group {group}, which "
                          "cannot be modified", hint="create a custom parameter group from it, attach it to the "
                                                     "instance (a reboot applies it) well before the window")
        shared = self.api.sharing(group)
        if shared:
            raise Refused(f"parameter group {group} is shared with RDS instance(s) {', '.join(shared)}: read_only=1 "
                          "there would stop their writes too", hint=f"give {self.api.instance_id} a parameter group "
                          "of its own (copy this one, attach it; a reboot applies it) well before the window, or use "
                          "write_block: revoke_and_kill")
        return group

    def check(self, s: Session) -> str:
        group = self._own_group()
        value = self.api.user_value(group, PARAMETER)
        now = f"sets read_only={value}" if value is not None else "leaves read_only at the engine default"
        return (f"parameter group {group} can be modified (it {now}; the server reads "
                f"{s.variable('read_only')}); how long AWS takes to apply it is AWS's, not migrate's")

    def block(self, s: Session, ctx: RunContext) -> str:
        group = self._own_group()
        if "parameter_group" not in ctx.facts:  # a resumed block keeps what the group held before the first one
            saved = {"group": group, "previous": self.api.user_value(group, PARAMETER)}
            ctx.facts["parameter_group"] = saved
            ctx.data["parameter_group"] = saved  # for a later `migrate rollback`
        ctx.save(durable=True)
        began = time.monotonic()
        self.api.set(group, PARAMETER, "1")
        api_ms = elapsed_ms(began)
        ctx.checkpoint(f"read_only=1 set in parameter group {group}; waiting for the server to apply it")
        applied = time.monotonic()
        self._wait_read_only(s, True)
        apply_ms = elapsed_ms(applied)
        killed_at = time.monotonic()
        killed = kill_and_wait(s, self.users, self.timeout_s)
        ctx.facts["block_timing"] = {"api_ms": api_ms, "apply_ms": apply_ms, "sessions": killed,
                                     "kill_ms": elapsed_ms(killed_at)}
        return (f"writes blocked on {self.server.name}: read_only=1 in parameter group {group} (API {api_ms:.0f} ms), "
                f"applied by the server {apply_ms:.0f} ms later; {killed} session(s) killed and gone")

    def _wait_read_only(self, s: Session, on: bool) -> None:
        deadline = time.monotonic() + self.timeout_s
        while bool(s.variable("read_only")) != on:
            if time.monotonic() > deadline:
                raise StepFailed(f"{self.server.name} still reads read_only = {int(not on)} {self.timeout_s:g} s after "
                                 f"read_only={int(on)} was set in its parameter group",
                                 hint="AWS applies parameter changes asynchronously and may be slow: check the "
                                      "instance's parameter group status (pending-reboot means a static parameter) "
                                      "or raise cutover.timeout_s")
            time.sleep(POLL_S)

    def is_blocked(self, s: Session, facts: dict) -> bool:
        return "parameter_group" in facts and bool(s.variable("read_only")) and not sessions_of(s, self.users)

    def release(self, s: Session, ctx: RunContext) -> str | None:
        saved = ctx.facts.get("parameter_group")
        return None if saved is None else self._restore(s, saved)

    def _restore(self, s: Session, saved: dict) -> str:
        group, previous = saved["group"], saved["previous"]
        if previous is None:
            self.api.reset(group, PARAMETER)
        else:
            self.api.set(group, PARAMETER, previous)
        self._wait_read_only(s, previous not in (None, "0"))
        how = "reset to the engine default" if previous is None else f"back to {previous}"
        return (f"read_only {how} in parameter group {group}; {self.server.name} reads read_only = "
                f"{s.variable('read_only')}")

    # -- the RDS source as the new primary (`migrate rollback` after a cutover that blocked it so) -----
    def make_writable(self, s: Session, ctx: RunContext) -> str:
        saved = ctx.data.get("parameter_group")
        if saved is None or not s.variable("read_only"):
            return ""
        return self._restore(s, saved)

    def make_read_only(self, s: Session, ctx: RunContext) -> str:
        saved = ctx.data.get("parameter_group")
        if saved is None:
            return ""
        self.api.set(saved["group"], PARAMETER, "1")
        self._wait_read_only(s, True)
        return f"read_only=1 again in parameter group {saved['group']}"

    def is_writable(self, s: Session) -> bool:
        return not s.variable("read_only")
