"""Repoint by rewriting a file on each application host over SSH: `template` with {host} and {port} written
to `path` atomically (a temporary file renamed over it), the file it replaces kept beside it as
`<path>.migrate-previous`, then `reload`, then the file read back. The hosts are changed at once, each in one
SSH command (an SSH round trip costs ~100 ms, measured on the sandbox; the application waits through them), over
connections opened before the block (`prepare`). A host that fails has the hosts changed put back (previous
file, reload) and is named.

The file's content (it may hold a password) never goes into a log line, a message or the run's state.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from migrate.adapters.executor import Executor, SshExecutor
from migrate.capabilities.repoint.base import (
    Caution,
    RepointCheckFailed,
    Repointer,
    RepointFailed,
    program_of,
)
from migrate.errors import MigrateError
from migrate.playbook import Ssh, SshFileRepoint

PREVIOUS = ".migrate-previous"
WRITE_FAILED, RELOAD_FAILED = 90, 91  # exit statuses of the per-host script
READ_BACK = "--- migrate: the file as it is now ---"
STDERR_LINES = 3
SLOW_COMMAND_MS = 100  # plan warns above it: the repoint pays one SSH command per host while writes are blocked


def label(ssh: Ssh) -> str:
    return f"{ssh.user}@{ssh.host}:{ssh.port}"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SshFileRepointer(Repointer):
    method = "ssh_file"

    def __init__(self, settings: SshFileRepoint, *, executor_for: Callable[[Ssh], Executor] | None = None,
                 timeout_s: float = 60.0):
        self.settings = settings
        self.path = str(settings.path)
        self.previous = self.path + PREVIOUS
        self.timeout_s = timeout_s
        self._executors: dict[int, Executor] = {}
        self._executor_for = executor_for or (lambda ssh: SshExecutor(ssh, label=label(ssh)))

    def _on(self, i: int) -> Executor:
        if i not in self._executors:
            self._executors[i] = self._executor_for(self.settings.hosts[i])
        return self._executors[i]

    @property
    def _hosts(self) -> str:
        return ", ".join(label(h) for h in self.settings.hosts)

    def render(self, host: str, port: int) -> bytes:
        return self.settings.template.replace("{host}", host).replace("{port}", str(port)).encode()

    def describe(self, host: str, port: int) -> str:
        reload = f", run `{self.settings.reload}`" if self.settings.reload else ""
        validated = f" and the file checked with `{self.settings.check}`" if self.settings.check else ""
        return (f"on {self._hosts} at once (connected{validated} before the block), one SSH command each: keep "
                f"{self.path} as "
                f"{self.previous}, write the template for "
                f"{host}:{port} to {self.path} (temporary file, then rename){reload} and read the file back; a host "
                "that fails puts back the hosts already changed")

    def current(self) -> None:
        return None

    def points_to(self, host: str, port: int) -> bool:
        wanted = _digest(self.render(host, port))
        return all(_digest(self._read(i)) == wanted for i in range(len(self.settings.hosts)))

    def _read(self, i: int) -> bytes:
        result = self._on(i).run(["cat", "--", self.path], timeout=self.timeout_s, check=False)
        if not result.ok:
            raise RepointFailed(f"cannot read {self.path} on {self._on(i).label}: {self._why(result)}",
                                hint="check the path and that the SSH user may read it (ssh.sudo)")
        return result.stdout

    @staticmethod
    def _why(result) -> str:
        lines = result.stderr.strip().splitlines()[-STDERR_LINES:]
        return f"exit {result.exit_status}" + (": " + " / ".join(line.strip() for line in lines) if lines else "")

    # -- changing ------------------------------------------------------------------------------------

    def prepare(self, host: str, port: int) -> None:
        """Before writes are blocked, on every host at once: connect (an SSH handshake costs a few hundred ms) and
        run `check` on the file rendered for host:port (a bad template is refused before it costs downtime, and
        the check's time is not spent in the write gap)."""
        hosts = range(len(self.settings.hosts))
        for i in hosts:
            self._on(i)  # made here, not in the threads
        content = self.render(host, port)
        with ThreadPoolExecutor(len(hosts)) as pool:
            failed = [f for f in pool.map(lambda i: self._prepare_host(i, content), hosts) if f is not None]
        if failed:
            raise failed[0]

    def _prepare_host(self, i: int, content: bytes) -> MigrateError | None:
        ex = self._on(i)
        try:
            ex.run("true", timeout=self.timeout_s)
            if not self.settings.check:
                return None
            candidate = shlex.quote(f"{self.path}.migrate-check")
            check = self.settings.check.replace("{file}", candidate)
            result = ex.run(f"umask 077; cat > {candidate} || exit {WRITE_FAILED}\n( {check} ) >&2; status=$?\n"
                            f"rm -f {candidate}; exit $status", timeout=self.timeout_s, input=content, check=False)
        except MigrateError as exc:
            return exc
        if result.exit_status == WRITE_FAILED:
            return RepointFailed(f"on {ex.label}, could not write {self.path}.migrate-check: {self._why(result)}",
                                 hint="check that the SSH user may write the file's directory (ssh.sudo)")
        if not result.ok:
            return RepointFailed(f"on {ex.label}, `{self.settings.check}` refuses the file rendered for the new "
                                 f"primary: {self._why(result)}",
                                 hint="fix cutover.repoint.ssh_file.template (nothing was changed)")
        return None

    def point_to(self, host: str, port: int) -> str:
        """Every host at once, each in one SSH command (write, reload, read back): the application waits."""
        content = self.render(host, port)
        hosts = range(len(self.settings.hosts))
        for i in hosts:
            self._on(i)  # made here, not in the threads
        with ThreadPoolExecutor(len(hosts)) as pool:
            outcomes = list(pool.map(lambda i: self._point_host(i, content), hosts))
        changed = [i for i, (was_changed, _) in zip(hosts, outcomes, strict=True) if was_changed]
        failed = [(i, error) for i, (_, error) in zip(hosts, outcomes, strict=True) if error is not None]
        if failed:
            i, exc = failed[0]
            undone = self._put_back(changed)
            raise RepointFailed(
                f"host {i + 1} of {len(hosts)} ({self._on(i).label}) failed: {exc.message}; {undone}",
                hint=f"{exc.hint + '; ' if exc.hint else ''}fix it, then rerun the command")
        reload = f" and ran `{self.settings.reload}`" if self.settings.reload else ""
        already = "" if len(changed) == len(hosts) else f"; the other {len(hosts) - len(changed)} already had it"
        return (f"wrote {self.path} for {host}:{port} on {len(changed)} of {len(hosts)} host(s) ({self._hosts}"
                f"{already}){reload}; read back on every one, the previous file kept as {self.previous}")

    def _point_host(self, i: int, content: bytes) -> tuple[bool, MigrateError | None]:
        """On host i: the content written atomically unless it is there already (the file it replaces kept), the
        reload, the file read back. (changed?, what failed)."""
        path, tmp, prev = (shlex.quote(p) for p in (self.path, f"{self.path}.migrate-tmp", self.previous))
        reload = f"( {self.settings.reload} ) >&2 || exit {RELOAD_FAILED}\n" if self.settings.reload else ""
        # The temporary file takes the old one's mode and owner before the content goes in.
        script = (f"umask 077; rm -f {tmp}; if [ -e {path} ]; then cp -p {path} {tmp} || exit {WRITE_FAILED}; fi\n"
                  f"cat > {tmp} || exit {WRITE_FAILED}\n"
                  f"if [ -e {path} ] && cmp -s {tmp} {path}; then rm -f {tmp}; echo unchanged\n"
                  f"else if [ -e {path} ]; then cp -p {path} {prev} || exit {WRITE_FAILED}; fi\n"
                  f"  mv -f {tmp} {path} || exit {WRITE_FAILED}; echo changed; fi\n"
                  f"{reload}echo {READ_BACK}; cat {path}")
        try:
            result = self._on(i).run(script, timeout=self.timeout_s, input=content, check=False)
        except MigrateError as exc:
            return False, exc
        said, _, back = result.stdout.partition(f"{READ_BACK}\n".encode())
        changed = said.startswith(b"changed")
        if result.exit_status == WRITE_FAILED or not said:
            return changed, RepointFailed(f"could not write {self.path}: {self._why(result)}",
                                          hint="check that the SSH user may write the file and its directory "
                                               "(ssh.sudo)")
        if result.exit_status == RELOAD_FAILED:
            return changed, RepointFailed(f"`{self.settings.reload}` {self._why(result)}",
                                          hint="run the reload by hand on that host to see why it fails")
        if not result.ok or _digest(back) != _digest(content):
            return changed, RepointFailed(f"{self.path} on {self._on(i).label} is not what was written",
                                          hint="something else writes this file (config management?)")
        return changed, None

    def _reload(self, i: int) -> None:
        if not self.settings.reload:
            return
        result = self._on(i).run(self.settings.reload, timeout=self.timeout_s, check=False)
        if not result.ok:
            raise RepointFailed(f"`{self.settings.reload}` {self._why(result)}",
                                hint="run the reload by hand on that host to see why it fails")

    def _put_back(self, hosts: list[int]) -> str:
        """The previous file back (atomically) and reloaded on each of `hosts`; one sentence of what happened."""
        done, failed = [], []
        for i in hosts:
            ex = self._on(i)
            path, prev, tmp = (shlex.quote(p) for p in (self.path, self.previous, f"{self.path}.migrate-tmp"))
            try:
                ex.run(f"cp -p {prev} {tmp} && mv -f {tmp} {path}", timeout=self.timeout_s)
            except MigrateError as exc:
                failed.append(f"on {ex.label} the previous file could not be put back ({exc.message}): copy "
                              f"{self.previous} over {self.path} there by hand")
                continue
            try:
                self._reload(i)
                done.append(ex.label)
            except MigrateError as exc:
                failed.append(f"on {ex.label} the previous file is back but its reload failed ({exc.message})")
        said = (f"restored the previous {self.path} and reloaded on {', '.join(done)}" if done else
                "no other host had been changed" if not failed else "")
        return "; ".join(x for x in [said, *failed] if x)

    def snapshot(self, host: str, port: int) -> dict[str, Any]:
        """The hosts whose file `point_to` changes are those whose file then holds the new content: only those
        are put back (a `.migrate-previous` left by an older run elsewhere is never restored)."""
        return {"to": [host, port]}

    def restore(self, saved: dict[str, Any]) -> str:
        written = _digest(self.render(*saved["to"]))
        ours = [i for i in range(len(self.settings.hosts)) if _digest(self._read(i)) == written]
        return f"{self.path}: {self._put_back(ours)}"

    # -- plan ----------------------------------------------------------------------------------------

    def check(self) -> str:
        said, slowest = [], (0.0, "")
        directory = shlex.quote(str(self.settings.path.parent))
        programs = self._programs()
        for i in range(len(self.settings.hosts)):
            ex = self._on(i)
            try:
                ex.run("true", timeout=30)  # connected: what follows is timed as the repoint will pay it
                started = time.monotonic()
                writable = ex.run(f"test -d {directory} && test -w {directory}", timeout=30, check=False).ok
                slowest = max(slowest, ((time.monotonic() - started) * 1000, ex.label))
                missing = [(key, program) for key, program in programs if not ex.which(program)]
            except MigrateError as exc:
                raise RepointCheckFailed(f"application host {ex.label} cannot be reached: {exc.message}",
                                         hint=exc.hint or "check cutover.repoint.ssh_file.hosts") from None
            if not writable:
                raise RepointCheckFailed(f"on {ex.label}, {self.settings.path.parent} is not a directory the SSH user "
                                         "may write", hint="create it, or set ssh.sudo: true for that host")
            if missing:
                key, program = missing[0]
                raise RepointCheckFailed(f"on {ex.label}, the {key}'s program {program} is not found",
                                         hint=f"install it there or fix cutover.repoint.ssh_file.{key}")
            said.append(ex.label)
        found = "".join(f", the {key}'s program {program} found" for key, program in programs)
        reload = found if self.settings.reload else f"{found}, no reload"
        ms, host = slowest
        text = (f"{self.path}'s directory is writable on {', '.join(said)}{reload}; an SSH command takes at most "
                f"{ms:.0f} ms ({host})")
        if ms > SLOW_COMMAND_MS:
            return Caution(f"{text}, over {SLOW_COMMAND_MS} ms: the repoint pays one SSH command per host while "
                           "writes are blocked, and the login shell's start-up (e.g. ~/.bashrc, which bash runs for "
                           "every SSH command) is in it; make it quick for the SSH user")
        return text

    def _programs(self) -> list[tuple[str, str]]:
        """(key, program) of the commands set (reload, check)."""
        commands = [("reload", self.settings.reload), ("check", self.settings.check)]
        found = [(key, program_of(command, f"cutover.repoint.ssh_file.{key}")) for key, command in commands if command]
        return [(key, program) for key, program in found if program]

    def close(self) -> None:
        for ex in self._executors.values():
            ex.close()
        self._executors.clear()
