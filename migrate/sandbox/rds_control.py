"""The sandbox's RDS control plane, for parameter groups only: a small process that applies what the RDS
instance's parameter group (in moto) says to the source server, as RDS does with a dynamic parameter
modified with ApplyMethod=immediate.

This is the only place where the sandbox imitates AWS's control plane. moto stores a parameter group's
parameters and applies nothing: without this process, `modify_db_parameter_group(read_only=1)` (the
`parameter_group` write blocker) would change a record in moto and never the server, and the sandbox would
lie about RDS. So every ~100 ms it reads the instance's group (describe_db_instances -> DBParameterGroups,
describe_db_parameters) and, for the dynamic parameters it knows (DYNAMIC: name -> SET GLOBAL), sets the
source's global variable as the server's root, `delay` seconds after it first saw the change; a parameter
that leaves the group (reset_db_parameter_group) gets the engine's default back (read_only -> 0). A
parameter set with ApplyMethod=pending-reboot waits for a reboot, which the sandbox does not have.

The delay is read from a file at every poll (`migrate sandbox rds-applier --dir D --delay SECONDS|never`,
or `set_delay()`): RDS applies an immediate change within seconds, not at once, and how long is not ours
to choose, so tests and the bench try 0 s, 1 s and never.

Root's session here is the sandbox's, standing in for AWS's own access to its instance: migrate itself
never gets a privileged session on an RDS source (it has the master user, which cannot SET GLOBAL
read_only), and nothing of migrate calls this module.

    python -m migrate.sandbox.rds_control --dir SANDBOX      (started by `migrate sandbox up`)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.config import Config

from migrate.adapters import aws as aws_adapter
from migrate.adapters.db import Session, connect
from migrate.errors import BadInput, SandboxError
from migrate.runner.store import write_atomic
from migrate.sandbox import procs

POLL_S = 0.1  # the sandbox's AWS stand-in: a change is seen within 100 ms (a faster poll cost a tenth of a core per sandbox)
GROUP_REFRESH_S = 1.0  # how often the instance's parameter group name is read again
HEARTBEAT_S = 1.0  # the state file is rewritten at least this often
DEFAULT_DELAY_S = 1.0
NEVER = "never"
STALE_S = 5.0  # a state file older than this means the applier is not polling


def _boolean(value: str) -> str | None:
    v = value.strip().lower()
    return "1" if v in ("1", "on", "true") else "0" if v in ("0", "off", "false") else None


@dataclass(frozen=True)
class Dynamic:
    """A dynamic parameter the applier knows: how to set it, and the engine's default."""

    variable: str
    default: str
    normalize: Callable[[str], str | None] = _boolean

    def set_sql(self, value: str) -> str:
        return f"SET GLOBAL {self.variable} = {int(value)}"


DYNAMIC: dict[str, Dynamic] = {
    "read_only": Dynamic("read_only", default="0"),
    "log_bin_trust_function_creators": Dynamic("log_bin_trust_function_creators", default="0"),
}


def parse_delay(text: str) -> float | None:
    """'never' -> None (changes are seen, never applied); otherwise seconds >= 0."""
    if text.strip().lower() == NEVER:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"delay {text!r} is neither a number of seconds nor '{NEVER}'") from None
    if value < 0:
        raise BadInput(f"delay {value:g} s is negative")
    return value


@dataclass
class RdsApplier:
    """The applier's files under the sandbox: its delay, pid, log and state."""

    base: Path
    sandbox_dir: Path

    @property
    def delay_file(self) -> Path:
        return self.base / "delay"

    @property
    def pid_file(self) -> Path:
        return self.base / "applier.pid"

    @property
    def log_file(self) -> Path:
        return self.base / "applier.log"

    @property
    def state_file(self) -> Path:
        return self.base / "state.json"

    def set_delay(self, delay: float | None) -> None:
        """Seconds between the group's change and the server's (None: never). Taken at the next poll."""
        if delay is not None and delay < 0:
            raise BadInput(f"delay {delay:g} s is negative")
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.delay_file, f"{NEVER if delay is None else repr(float(delay))}\n")

    def delay(self) -> float | None:
        try:
            return parse_delay(self.delay_file.read_text())
        except (FileNotFoundError, BadInput):
            return DEFAULT_DELAY_S

    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def start(self) -> None:
        if self.running():
            return
        self.stop()  # alive but not polling (stuck): never two appliers on one source
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.delay_file.exists():
            self.set_delay(DEFAULT_DELAY_S)
        self.state_file.unlink(missing_ok=True)
        pid = procs.spawn([sys.executable, "-m", "migrate.sandbox.rds_control", "--dir", str(self.sandbox_dir)],
                          log_path=self.log_file, pid_path=self.pid_file)
        procs.wait_until(lambda: self.state().get("group") and not self.state().get("error"), timeout=30,
                         what="the RDS parameter-group applier", log_path=self.log_file, pid=pid)

    def running(self) -> bool:
        """Its process is alive and it polled moto lately (whatever the answer)."""
        polled = self.state().get("polled_at", 0)
        return procs.alive(procs.read_pid(self.pid_file)) and time.time() - polled < STALE_S

    def stop(self) -> None:
        procs.stop(procs.read_pid(self.pid_file))


def wait_applied(applier: RdsApplier, parameter: str, value: str, timeout: float) -> dict[str, Any]:
    """Until the applier reports `parameter` = `value` applied (tests, bench); the state then."""
    def applied() -> dict[str, Any] | None:
        state = applier.state()
        return state if state.get("applied", {}).get(parameter) == value else None

    return procs.wait_until(applied, timeout=timeout, what=f"{parameter}={value} applied by the RDS applier",
                            log_path=applier.log_file)


# ------------------------------------------------------------------------------------------------
# The process.


@dataclass
class _Seen:
    value: str
    at: float  # monotonic
    wall: float


@dataclass
class _Loop:
    applier: RdsApplier
    rds: Any
    instance_id: str
    connect: Callable[[], Session]
    group: str | None = None
    group_read_at: float = 0.0
    seen: dict[str, _Seen] = field(default_factory=dict)
    applied: dict[str, str] = field(default_factory=dict)  # what the server holds, as last read or set
    events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    failing: str = ""
    said: set[str] = field(default_factory=set)
    session: Session | None = None
    written_at: float = 0.0

    def say(self, text: str) -> None:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}", flush=True)

    def say_once(self, text: str) -> None:
        if text not in self.said:
            self.said.add(text)
            self.say(text)

    def server(self) -> Session:
        if self.session is None:
            self.session = self.connect()
            for name, dyn in DYNAMIC.items():  # what the server holds now: only a change of the group moves it
                self.applied[name] = dyn.normalize(str(self.session.value(f"SELECT @@global.{dyn.variable}"))) or ""
        return self.session

    def wanted(self) -> dict[str, tuple[str | None, str]]:
        """name -> (value the group asks for, or None when it cannot be applied now; why)."""
        now = time.monotonic()
        if self.group is None or now - self.group_read_at >= GROUP_REFRESH_S:
            instance = self.rds.describe_db_instances(DBInstanceIdentifier=self.instance_id)["DBInstances"][0]
            groups = instance.get("DBParameterGroups") or []
            if not groups:
                raise SandboxError(f"RDS instance {self.instance_id} has no parameter group")
            self.group, self.group_read_at = groups[0]["DBParameterGroupName"], now
        listed = {p["ParameterName"]: p for p in
                  self.rds.describe_db_parameters(DBParameterGroupName=self.group, Source="user")["Parameters"]}
        out: dict[str, tuple[str | None, str]] = {}
        for name, dyn in DYNAMIC.items():
            p = listed.get(name)
            if p is None or "ParameterValue" not in p:
                out[name] = (dyn.default, "not set by the group: the engine's default")
            elif p.get("ApplyMethod") == "pending-reboot":
                out[name] = (None, "ApplyMethod pending-reboot: waits for a reboot the sandbox does not do")
            else:
                value = dyn.normalize(p["ParameterValue"])
                out[name] = (value, "set by the group") if value is not None else \
                    (None, f"value {p['ParameterValue']!r} is not one the applier can set")
        return out

    def tick(self) -> None:
        try:
            wanted = self.wanted()
        except Exception as exc:  # noqa: BLE001 - moto down or not provisioned: keep the last state, say why
            self._failed("reading the parameter group from moto",
                         f"cannot read the parameter group from moto ({type(exc).__name__}: {exc}); "
                         "the server keeps what it has until moto answers again")
            return
        try:
            self.server()
        except Exception as exc:  # noqa: BLE001 - the source is down (stopped by a test): retry at the next poll
            self._failed("reaching the source", f"cannot reach the source server as root ({exc}); retrying")
            return
        recovered = self.error is not None
        if recovered:
            self.say(f"recovered: {self.failing} works again")
        self.error = None
        delay = self.applier.delay()
        for name, (value, why) in wanted.items():
            if value is None:
                self.say_once(f"{name} in group {self.group}: not applied, {why}")
                continue
            seen = self.seen.get(name)
            if seen is None or seen.value != value:
                seen = self.seen[name] = _Seen(value, time.monotonic(), time.time())
            if self.applied.get(name) == value or delay is None or time.monotonic() - seen.at < delay:
                continue
            self._apply(name, value, seen, delay, why)
        self._write_state(delay, force=recovered)

    def _apply(self, name: str, value: str, seen: _Seen, delay: float, why: str) -> None:
        try:
            self.server().run(DYNAMIC[name].set_sql(value))
        except Exception as exc:  # noqa: BLE001 - the session broke: reconnect and retry at the next poll
            self._failed(f"SET GLOBAL {name}", f"SET GLOBAL {name} failed on the source ({exc}); retrying")
            with contextlib.suppress(Exception):
                self.server().close()
            self.session = None
            return
        self.applied[name] = value
        after = time.monotonic() - seen.at
        event = {"parameter": name, "value": value, "group": self.group, "seen_at": seen.wall,
                 "applied_at": time.time(), "after_s": round(after, 3), "delay_s": delay}
        self.events = (self.events + [event])[-20:]
        self.say(f"{name}={value} applied to the source {after:.3f} s after the parameter group changed "
                 f"({why}; delay {delay:g} s)")
        self._write_state(delay, force=True)

    def _failed(self, what: str, message: str) -> None:
        changed = message != self.error
        if changed:
            self.say(message)
        self.error, self.failing = message, what
        self._write_state(self.applier.delay(), force=changed)

    def _write_state(self, delay: float | None, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.written_at < HEARTBEAT_S:
            return
        self.written_at = now
        pending = {name: {"value": s.value, "seen_at": s.wall} for name, s in self.seen.items()
                   if self.applied.get(name) != s.value}
        write_atomic(self.applier.state_file, json.dumps({
            "pid": os.getpid(), "polled_at": now, "instance": self.instance_id, "group": self.group,
            "delay": NEVER if delay is None else delay, "applied": self.applied, "pending": pending,
            "error": self.error, "events": self.events}, indent=2))


def run(sandbox_dir: Path) -> None:
    from migrate.sandbox.aws import INSTANCE_ID
    from migrate.sandbox.sandbox import Sandbox  # the sandbox imports this module for its `up` step

    sb = Sandbox.open(sandbox_dir)
    settings = sb.aws.settings
    # one attempt, short timeouts: a moto that is down must not hold the loop for the adapter's retries
    rds = aws_adapter.session(settings).client("rds", endpoint_url=settings.endpoint_url, config=Config(
        retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2))
    loop = _Loop(sb.rds_applier, rds, INSTANCE_ID,
                 lambda: connect(sb.source.root_endpoint(), attempts=1, connect_timeout=2, read_timeout=30))
    loop.say(f"applying the dynamic parameters {', '.join(DYNAMIC)} of RDS instance {INSTANCE_ID}'s parameter "
             f"group (moto at {settings.endpoint_url}) to the source on port {sb.source.port}; polling every "
             f"{POLL_S:g} s")
    while True:
        began = time.monotonic()
        loop.tick()
        time.sleep(max(0.0, POLL_S - (time.monotonic() - began)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m migrate.sandbox.rds_control")
    parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        run(args.dir.resolve())


if __name__ == "__main__":
    main()
