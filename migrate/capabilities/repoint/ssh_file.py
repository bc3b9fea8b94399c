"""Repoint by rewriting a file on each application host over SSH: `template` with {host} and {port} written
to `path` atomically (a temporary file renamed over it), the file it replaces kept beside it as
`<path>.migrate-previous`, then `reload`, then the file read back. A host failing before every host is done
puts back the hosts already changed (previous file, reload) and names which host failed.

The file's content (it may hold a password) never goes into a log line, a message or the run's state.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from typing import Any

from migrate.adapters.executor import Executor, SshExecutor
from migrate.capabilities.repoint.base import RepointCheckFailed, Repointer, RepointFailed, program_of
from migrate.errors import MigrateError
from migrate.playbook import Ssh, SshFileRepoint

PREVIOUS = ".migrate-previous"
STDERR_LINES = 3


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
        return (f"on {self._hosts} in turn: keep {self.path} as {self.previous}, write the template for "
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

    def point_to(self, host: str, port: int) -> str:
        content = self.render(host, port)
        changed: list[int] = []
        for i in range(len(self.settings.hosts)):
            try:
                if self._replace(i, content, keep_previous=True):
                    changed.append(i)
                self._reload(i)
                if _digest(self._read(i)) != _digest(content):
                    raise RepointFailed(f"{self.path} on {self._on(i).label} is not what was written",
                                        hint="something else writes this file (config management?)")
            except MigrateError as exc:
                undone = self._put_back(changed)
                raise RepointFailed(
                    f"host {i + 1} of {len(self.settings.hosts)} ({self._on(i).label}) failed: {exc.message}; "
                    f"{undone}", hint=f"{exc.hint + '; ' if exc.hint else ''}fix it, then rerun the command") from None
        reload = f" and ran `{self.settings.reload}`" if self.settings.reload else ""
        n = len(self.settings.hosts)
        already = "" if len(changed) == n else f"; the other {n - len(changed)} already had it"
        return (f"wrote {self.path} for {host}:{port} on {len(changed)} of {n} host(s) ({self._hosts}{already})"
                f"{reload}; read back on every one, the previous file kept as {self.previous}")

    def _replace(self, i: int, content: bytes, *, keep_previous: bool) -> bool:
        """Write `content` to the path atomically on host i (False: it was already there)."""
        ex = self._on(i)
        if ex.exists(self.path) and _digest(self._read(i)) == _digest(content):
            return False
        path, tmp = shlex.quote(self.path), shlex.quote(f"{self.path}.migrate-tmp")
        keep = f"if [ -e {path} ]; then cp -p {path} {shlex.quote(self.previous)}; fi && " if keep_previous else ""
        # The temporary file takes the old one's mode and owner before the content goes in.
        script = (f"{keep}umask 077 && rm -f {tmp} && if [ -e {path} ]; then cp -p {path} {tmp}; fi && "
                  f"cat > {tmp} && mv -f {tmp} {path}")
        result = ex.run(script, timeout=self.timeout_s, input=content, check=False)
        if not result.ok:
            raise RepointFailed(f"could not write {self.path}: {self._why(result)}",
                                hint="check that the SSH user may write the file and its directory (ssh.sudo)")
        return True

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
        said = []
        directory = shlex.quote(str(self.settings.path.parent))
        program = self._program()
        for i in range(len(self.settings.hosts)):
            ex = self._on(i)
            try:
                writable = ex.run(f"test -d {directory} && test -w {directory}", timeout=30, check=False).ok
                found = ex.which(program) if program else None
            except MigrateError as exc:
                raise RepointCheckFailed(f"application host {ex.label} cannot be reached: {exc.message}",
                                         hint=exc.hint or "check cutover.repoint.ssh_file.hosts") from None
            if not writable:
                raise RepointCheckFailed(f"on {ex.label}, {self.settings.path.parent} is not a directory the SSH user "
                                         "may write", hint="create it, or set ssh.sudo: true for that host")
            if program and not found:
                raise RepointCheckFailed(f"on {ex.label}, the reload's program {program} is not found",
                                         hint="install it there or fix cutover.repoint.ssh_file.reload")
            said.append(ex.label)
        reload = f", the reload's program {program} found" if program else ", no reload"
        return f"{self.path}'s directory is writable on {', '.join(said)}{reload}"

    def _program(self) -> str | None:
        return program_of(self.settings.reload, "cutover.repoint.ssh_file.reload") if self.settings.reload else None

    def close(self) -> None:
        for ex in self._executors.values():
            ex.close()
        self._executors.clear()
