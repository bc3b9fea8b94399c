"""Run commands on a host: here (subprocess) or over SSH (paramiko), behind one interface.

Both executors run the same bash script: an optional environment file (0600, sourced then deleted,
so a password never sits on a command line), the command or pipeline under `set -o pipefail`, and
the exit status of every pipeline stage reported back.
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from migrate import log
from migrate.errors import CommandFailed, CommandTimeout, ExecutorError, HostKeyUnknown
from migrate.playbook import Ssh

Command = Sequence[str] | str  # argv (quoted for you) or a shell snippet you quoted yourself
LineSink = Callable[[str], None]
_STATUS_MARK = "__migrate_pipestatus__"
# An SSH command's output is polled from 1 ms, doubling while idle up to 20 ms: a short command is seen done within
# a millisecond or two (the repoint waits on them with writes blocked), a long one costs few wake-ups.
POLL_MIN_S, POLL_MAX_S = 0.001, 0.02
REMOTE_TIMEOUT_GRACE_S = 2


@dataclass(frozen=True)
class CommandResult:
    command: str
    exit_status: int
    stdout: bytes
    stderr: str
    duration_s: float
    stage_status: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


def render(cmd: Command) -> str:
    return cmd if isinstance(cmd, str) else shlex.join(cmd)


def build_script(stages: Sequence[Command], *, stdout_file: str | None = None,
                 env_file: str | None = None) -> str:
    """The bash script both executors run: env file sourced and removed, pipeline, stage statuses."""
    lines = ["set -o pipefail"]
    if env_file:
        lines.append(f"set -a; . {shlex.quote(env_file)}; rc=$?; rm -f {shlex.quote(env_file)}; set +a")
        lines.append("[ $rc -eq 0 ] || exit 125")
    pipeline = " | ".join(render(s) for s in stages)
    if stdout_file:
        pipeline += f" > {shlex.quote(stdout_file)}"
    lines.append(pipeline)
    lines.append('st=("${PIPESTATUS[@]}"); rc=$?')
    lines.append(f'printf "\\n{_STATUS_MARK} %s\\n" "${{st[*]}}" >&2')
    lines.append('for s in "${st[@]}"; do [ "$s" -ne 0 ] && exit "$s"; done; exit 0')
    return "\n".join(lines)


def env_file_text(env: Mapping[str, str]) -> str:
    for key in env:
        if not key.replace("_", "").isalnum():
            raise ValueError(f"not an environment variable name: {key!r}")
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())


def _split_status(stderr: str) -> tuple[str, tuple[int, ...]]:
    head, sep, tail = stderr.rpartition(f"\n{_STATUS_MARK} ")
    if not sep:
        return stderr, ()
    codes = tuple(int(c) for c in tail.split() if c.lstrip("-").isdigit())
    return head, codes


class Executor(ABC):
    """Runs commands on one host. `run` and `pipeline` return a CommandResult or raise CommandFailed."""

    label: str

    def run(self, cmd: Command, *, timeout: float, env: Mapping[str, str] | None = None,
            input: bytes | None = None, stdout_file: str | None = None, check: bool = True,
            on_stderr_line: LineSink | None = None) -> CommandResult:
        return self.pipeline([cmd], timeout=timeout, env=env, input=input, stdout_file=stdout_file,
                             check=check, on_stderr_line=on_stderr_line)

    def pipeline(self, stages: Sequence[Command], *, timeout: float, env: Mapping[str, str] | None = None,
                 input: bytes | None = None, stdout_file: str | None = None, check: bool = True,
                 on_stderr_line: LineSink | None = None) -> CommandResult:
        """Run `a | b | c` on this host; stdout to `stdout_file` (on this host) or returned."""
        shown = " | ".join(render(s) for s in stages) + (f" > {stdout_file}" if stdout_file else "")
        env_file = self._stage_env(env) if env else None
        script = build_script(stages, stdout_file=stdout_file, env_file=env_file)
        started = time.monotonic()
        log.get().debug("run", host=self.label, command=log.redact(shown), timeout_s=timeout)
        status, out, err = self._execute(script, timeout=timeout, input=input, on_stderr_line=on_stderr_line,
                                         shown=shown)
        err, stages_status = _split_status(err)
        result = CommandResult(shown, status, out, log.redact(err), time.monotonic() - started, stages_status)
        if check and not result.ok:
            last = result.stderr.strip().splitlines()[-3:]
            raise CommandFailed(
                f"on {self.label}: `{log.redact(shown)[:300]}` exited {status}"
                + (f" (stages: {' '.join(map(str, stages_status))})" if len(stages_status) > 1 else "")
                + (": " + " / ".join(last) if last else ""),
                exit_status=status, stderr=result.stderr)
        return result

    @abstractmethod
    def _execute(self, script: str, *, timeout: float, input: bytes | None,
                 on_stderr_line: LineSink | None, shown: str) -> tuple[int, bytes, str]: ...

    def _stage_env(self, env: Mapping[str, str]) -> str:
        path = f"/tmp/.migrate-env-{uuid.uuid4().hex}"
        self.write_file(path, env_file_text(env).encode(), mode=0o600)
        return path

    @abstractmethod
    def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        """Create `path` with `mode` before any byte is written (never briefly world-readable)."""

    @abstractmethod
    def read_file(self, path: str) -> bytes: ...

    @abstractmethod
    def put(self, local: Path, remote: str, mode: int | None = None) -> None: ...

    @abstractmethod
    def get(self, remote: str, local: Path) -> None: ...

    def exists(self, path: str) -> bool:
        return self.run(["test", "-e", path], timeout=30, check=False).ok

    def which(self, program: str) -> str | None:
        result = self.run(f"command -v {shlex.quote(program)}", timeout=30, check=False)
        return result.text.strip() or None if result.ok else None

    def close(self) -> None:  # noqa: B027 - most executors hold nothing
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _StderrLines:
    """Feeds stderr to a callback line by line while keeping all of it."""

    def __init__(self, sink: LineSink | None):
        self.sink, self.buf, self.pending = sink, [], ""

    def feed(self, chunk: str) -> None:
        self.buf.append(chunk)
        if self.sink is None:
            return
        self.pending += chunk
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line and not line.startswith(_STATUS_MARK):
                self.sink(log.redact(line))

    def text(self) -> str:
        return "".join(self.buf)


# The local command runs in a process group of its own under this guard: when migrate dies (even by
# SIGKILL) the kernel sends the guard SIGTERM (PR_SET_PDEATHSIG) and the guard kills the whole group, so
# no hook or tool outlives the run that started it. The command runs in the background so that the trap
# fires at once; its stdin is passed on explicitly (a background job's would be /dev/null).
_GUARD = 'trap "kill -KILL 0" TERM; exec 3<&0; bash -c "$1" <&3 3<&- & wait $!'
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the thread that started it (hence migrate) dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalExecutor(Executor):
    def __init__(self, label: str = "local"):
        self.label = label

    def _execute(self, script: str, *, timeout: float, input: bytes | None,
                 on_stderr_line: LineSink | None, shown: str) -> tuple[int, bytes, str]:
        proc = subprocess.Popen(["bash", "-c", _GUARD, "migrate-guard", script],
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=_die_with_parent)
        err = _StderrLines(on_stderr_line)
        reader = threading.Thread(target=lambda: [err.feed(c.decode("utf-8", "replace"))
                                                  for c in iter(lambda: proc.stderr.read1(65536), b"")],
                                  daemon=True)
        reader.start()
        out: list[bytes] = []
        out_reader = threading.Thread(target=lambda: out.extend(iter(lambda: proc.stdout.read1(65536), b"")),
                                      daemon=True)
        out_reader.start()
        if input is not None:
            try:
                proc.stdin.write(input)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            status = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise CommandTimeout(f"on {self.label}: `{log.redact(shown)[:300]}` did not finish within "
                                 f"{timeout:g} s and was stopped") from None
        reader.join(5)
        out_reader.join(5)
        return status, b"".join(out), err.text()

    def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.fchmod(fd, mode)
            os.write(fd, data)
        finally:
            os.close(fd)

    def read_file(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def put(self, local: Path, remote: str, mode: int | None = None) -> None:
        shutil.copyfile(local, remote)
        if mode is not None:
            os.chmod(remote, mode)

    def get(self, remote: str, local: Path) -> None:
        shutil.copyfile(remote, local)


def _kill_group(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            continue


class SshExecutor(Executor):
    """Commands on a remote host through one paramiko connection, host key checked against known_hosts."""

    def __init__(self, ssh: Ssh, label: str | None = None):
        self.ssh = ssh
        self.label = label or f"{ssh.user}@{ssh.host}:{ssh.port}"
        self._client = None
        self._lock = threading.Lock()

    def _connect(self):  # -> paramiko.SSHClient
        import paramiko

        with self._lock:
            if self._client is not None and self._client.get_transport() and \
                    self._client.get_transport().is_active():
                return self._client
            client = paramiko.SSHClient()
            known = self.ssh.known_hosts
            if not known.exists():
                raise HostKeyUnknown(f"known_hosts file {known} does not exist, so {self._where()} cannot be "
                                     "verified", hint=self._trust_hint())
            client.load_host_keys(str(known))
            client.set_missing_host_key_policy(_RefuseUnknownHost(self))
            try:
                client.connect(self.ssh.host, port=self.ssh.port, username=self.ssh.user,
                               key_filename=str(self.ssh.key_file), look_for_keys=False, allow_agent=False,
                               timeout=self.ssh.connect_timeout_s, banner_timeout=self.ssh.connect_timeout_s,
                               auth_timeout=self.ssh.connect_timeout_s)
            except HostKeyUnknown:
                raise
            except paramiko.BadHostKeyException as exc:
                raise HostKeyUnknown(
                    f"the host key of {self._where()} does not match {known} "
                    f"(offered {_fingerprint(exc.key)}): refusing to connect, this may be an impersonation",
                    hint=f"if the host was rebuilt, remove its old line with ssh-keygen -R and trust it again: "
                         f"{self._trust_hint()}") from None
            except paramiko.AuthenticationException:
                raise ExecutorError(f"{self._where()} refused key {self.ssh.key_file} for user {self.ssh.user}",
                                    hint="check ssh.user and ssh.key_file, and the host's authorized_keys") from None
            except (OSError, paramiko.SSHException) as exc:
                raise ExecutorError(f"cannot reach {self._where()} over SSH: {exc}",
                                    hint="check ssh.host/ssh.port and that sshd runs there") from None
            transport = client.get_transport()
            transport.set_keepalive(15)
            if isinstance(transport.sock, socket.socket):
                # Without it each command waits out the peer's delayed ACK: 48 ms vs 4 ms per command, measured.
                transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._client = client
            return client

    def _where(self) -> str:
        return f"{self.ssh.host}:{self.ssh.port}"

    def _trust_hint(self) -> str:
        return (f"check the host's fingerprint (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it), then "
                f"ssh-keyscan -p {self.ssh.port} {self.ssh.host} >> {self.ssh.known_hosts}")

    def _execute(self, script: str, *, timeout: float, input: bytes | None,
                 on_stderr_line: LineSink | None, shown: str) -> tuple[int, bytes, str]:
        # `timeout` on the host stops the command there even if this connection dies; a little later than this
        # side's deadline, which is the one that says "did not finish within" (a race between them made the same
        # command a timeout or an exit 124).
        inner = shlex.join(["bash", "-c", script])
        if self.ssh.sudo:
            inner = "sudo -n " + inner
        command = f"timeout -k 5 {int(timeout + 0.999) + REMOTE_TIMEOUT_GRACE_S} {inner}"
        channel = self._connect().get_transport().open_session(timeout=self.ssh.connect_timeout_s)
        try:
            channel.exec_command(command)
            if input is not None:
                channel.sendall(input)
            channel.shutdown_write()
            return self._collect(channel, timeout, on_stderr_line, shown)
        finally:
            channel.close()

    def _collect(self, channel, timeout: float, on_stderr_line: LineSink | None,
                 shown: str) -> tuple[int, bytes, str]:
        deadline = time.monotonic() + timeout
        out: list[bytes] = []
        err = _StderrLines(on_stderr_line)
        idle_s = POLL_MIN_S
        while True:
            busy = False
            if channel.recv_ready():
                out.append(channel.recv(65536))
                busy = True
            if channel.recv_stderr_ready():
                err.feed(channel.recv_stderr(65536).decode("utf-8", "replace"))
                busy = True
            if not busy and channel.exit_status_ready() and not channel.recv_ready() \
                    and not channel.recv_stderr_ready():
                break
            if time.monotonic() > deadline:
                raise CommandTimeout(f"on {self.label}: `{log.redact(shown)[:300]}` did not finish within "
                                     f"{timeout:g} s and was stopped")
            if busy:
                idle_s = POLL_MIN_S
            else:
                time.sleep(idle_s)
                idle_s = min(idle_s * 2, POLL_MAX_S)
        return channel.recv_exit_status(), b"".join(out), err.text()

    def _sftp(self):
        return self._connect().open_sftp()

    def write_file(self, path: str, data: bytes, mode: int = 0o600) -> None:
        if self.ssh.sudo:
            # SFTP runs as the login user; sudo writes through a root shell reading stdin.
            self.run(f"umask 077 && cat > {shlex.quote(path)} && chmod {mode:o} {shlex.quote(path)}",
                     timeout=60, input=data)
            return
        self._sftp_write(path, data, mode)

    def _sftp_write(self, path: str, data: bytes, mode: int) -> None:
        with self._sftp() as sftp, sftp.open(path, "wb") as fh:
            fh.chmod(mode)  # before the first byte: never briefly readable by others
            fh.write(data)

    def _stage_env(self, env: Mapping[str, str]) -> str:
        # Written by the login user even under sudo: root can read it, nobody else can.
        path = f"/tmp/.migrate-env-{uuid.uuid4().hex}"
        self._sftp_write(path, env_file_text(env).encode(), 0o600)
        return path

    def read_file(self, path: str) -> bytes:
        if self.ssh.sudo:
            return self.run(["cat", path], timeout=60).stdout
        with self._sftp() as sftp, sftp.open(path, "rb") as fh:
            return fh.read()

    def put(self, local: Path, remote: str, mode: int | None = None) -> None:
        if self.ssh.sudo:
            self.write_file(remote, Path(local).read_bytes(), mode or 0o644)
            return
        with self._sftp() as sftp:
            sftp.put(str(local), remote)
            if mode is not None:
                sftp.chmod(remote, mode)

    def get(self, remote: str, local: Path) -> None:
        if self.ssh.sudo:
            Path(local).write_bytes(self.read_file(remote))
            return
        with self._sftp() as sftp:
            sftp.get(remote, str(local))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _fingerprint(key) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return f"{key.get_name()} SHA256:{base64.b64encode(digest).decode().rstrip('=')}"


class _RefuseUnknownHost:
    """paramiko policy: an unknown host is refused with its fingerprint and how to trust it."""

    def __init__(self, executor: SshExecutor):
        self.executor = executor

    def missing_host_key(self, client, hostname, key) -> None:
        ex = self.executor
        raise HostKeyUnknown(f"{ex._where()} is not in {ex.ssh.known_hosts} (it offers {_fingerprint(key)}); "
                             "refusing to connect to an unverified host", hint=ex._trust_hint())


def for_host(ssh: Ssh | None, label: str) -> Executor:
    """The executor for a host the playbook describes: SSH when it names one, else this machine."""
    return SshExecutor(ssh, label=label) if ssh else LocalExecutor(label=label)
