"""Repoint with the operator's own command: `{host}` and `{port}` substituted (shell-quoted), and
MIGRATE_TARGET_HOST / MIGRATE_TARGET_PORT in its environment. Where it points cannot be read back."""

from __future__ import annotations

import os
import shlex
import shutil

from migrate import log
from migrate.adapters.executor import Executor, LocalExecutor
from migrate.capabilities.repoint.base import RepointCheckFailed, Repointer, RepointFailed, program_of
from migrate.errors import CommandTimeout
from migrate.playbook import CommandRepoint

STDERR_LINES = 5


class CommandRepointer(Repointer):
    method = "command"

    def __init__(self, settings: CommandRepoint, executor: Executor | None = None, timeout_s: float = 60):
        self.settings = settings
        self.executor = executor or LocalExecutor()
        self.timeout_s = timeout_s

    def render(self, host: str, port: int) -> str:
        """The command line: {host} and {port} replaced by their shell-quoted values (plain replacement,
        so the shell's own braces, `${VAR}` or awk's `{print}`, stay as written)."""
        if not host:
            raise RepointFailed("no host to repoint to", hint="this is a bug in migrate: please report it")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise RepointFailed(f"port {port!r} is not a TCP port (1-65535)", hint="check the target's port")
        return self.settings.run.replace("{host}", shlex.quote(host)).replace("{port}", shlex.quote(str(port)))

    @staticmethod
    def environment(host: str, port: int) -> dict[str, str]:
        return {"MIGRATE_TARGET_HOST": host, "MIGRATE_TARGET_PORT": str(port)}

    def describe(self, host: str, port: int) -> str:
        return (f"run `{log.redact(self.render(host, port))}` on {self.executor.label} with "
                f"MIGRATE_TARGET_HOST={host} MIGRATE_TARGET_PORT={port} (at most {self.timeout_s:g} s; "
                "a non-zero exit fails the repoint)")

    def current(self) -> None:
        return None

    def points_to(self, host: str, port: int) -> None:
        return None

    def point_to(self, host: str, port: int) -> str:
        command = self.render(host, port)
        shown = log.redact(command)
        try:
            result = self.executor.run(command, timeout=self.timeout_s, env=self.environment(host, port),
                                       check=False)
        except CommandTimeout:
            raise RepointFailed(
                f"the repoint command `{shown}` did not finish within {self.timeout_s:g} s and was stopped",
                hint="it may have done part of its work: check where the application points, then make the "
                     "command faster or idempotent and retry") from None
        if not result.ok:
            last = result.stderr.strip().splitlines()[-STDERR_LINES:]
            raise RepointFailed(
                f"the repoint command `{shown}` exited {result.exit_status}"
                + (": " + " / ".join(line.strip() for line in last) if last else " (nothing on stderr)"),
                hint="it may have done part of its work: check where the application points; run the command "
                     "by hand with the same arguments to see why it failed")
        said = result.text.strip().splitlines()[-1:] if result.text.strip() else []
        return (f"ran `{shown}` on {self.executor.label} (exit 0 in {result.duration_s:.1f} s): the application "
                f"is pointed to {host}:{port}" + (f"; it said: {said[0].strip()}" if said else ""))

    def program(self) -> str:
        """The program the command starts: its first word after any NAME=value assignments."""
        program = program_of(self.settings.run, "cutover.repoint.command.run")
        if not program:
            raise RepointCheckFailed("the repoint command is empty",
                                     hint="set cutover.repoint.command.run, e.g. \"./repoint.sh {host} {port}\"")
        return program

    def check(self) -> str:
        program = self.program()
        if isinstance(self.executor, LocalExecutor):
            found = shutil.which(program)
        else:
            found = self.executor.which(program)
        if found:
            return f"the repoint command's program {program} is {found} on {self.executor.label}"
        if "/" in program and isinstance(self.executor, LocalExecutor) and os.path.exists(program):
            raise RepointCheckFailed(f"the repoint command's program {program} exists but is not executable",
                                     hint=f"chmod +x {shlex.quote(program)}")
        raise RepointCheckFailed(
            f"the repoint command's program {program} is not an executable on {self.executor.label} "
            f"(not a path to an executable file, not on PATH)",
            hint="fix cutover.repoint.command.run: give the program's full path, or install it")
