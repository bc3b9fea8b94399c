"""Local daemons for the sandbox and the tests: free ports, detached start, pid files, clean stop.

Every process is started with a pid file inside its sandbox directory and its command line naming
that directory, so `sandbox down` can find and stop it even after a crash lost the state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from migrate.errors import SandboxError

# Ports handed out stay reserved this long for every process of this user: a sandbox binds its ports seconds after
# choosing them, and without the reservation the kernel handed the same free port to a sandbox being made beside
# it (the test suite's workers): moto's port answered with a MariaDB greeting.
RESERVE_S = 600.0


def free_port() -> int:
    """A loopback port free now and not handed out by this function to any process of this user in the last
    RESERVE_S seconds."""
    reserved = Path(tempfile.gettempdir()) / f"migrate-ports-{os.getuid()}"
    reserved.mkdir(mode=0o700, exist_ok=True)
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mark = reserved / str(port)
        try:
            if time.time() - mark.stat().st_mtime < RESERVE_S:
                continue  # recently given to someone else, who may not have bound it yet
            mark.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
        try:
            os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue  # another process took it between our look and our claim
        return port
    raise SandboxError("no free loopback port found that was not handed out in the last ten minutes")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_program(name: str, *extra_dirs: str) -> str:
    found = shutil.which(name) or next((str(Path(d) / name) for d in (*extra_dirs, "/usr/sbin", "/usr/bin")
                                        if (Path(d) / name).exists()), None)
    if not found:
        raise SandboxError(f"{name} is not installed", hint="run `make demo` (it installs the Debian packages) "
                           "or apt-get install mariadb-server mariadb-backup mydumper openssh-server haproxy sysbench")
    return found


def spawn(argv: Sequence[str], *, log_path: Path, pid_path: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start a daemon detached from this process (it outlives `migrate sandbox up`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as logf:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, cwd=cwd, close_fds=True)
    pid_path.write_text(f"{proc.pid}\n")
    return proc.pid


def read_pid(pid_path: Path) -> int | None:
    try:
        return int(pid_path.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (our own dead child not yet reaped) is not alive
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def stop(pid: int | None, *, timeout: float = 20.0) -> None:
    """SIGTERM, wait, then SIGKILL."""
    if not alive(pid):
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not alive(pid):
                return
            time.sleep(0.05)
    raise SandboxError(f"process {pid} did not stop")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


SANDBOX_PROGRAMS = ("mariadbd", "sshd", "haproxy", "moto.server")
SANDBOX_MODULES = ("moto.server", "migrate.sandbox.moto_server", "migrate.sandbox.rds_control")


def processes_mentioning(text: str) -> list[int]:
    """Pids of sandbox daemons whose command line names `text` (the sandbox directory): the ones a crash
    orphaned. Only our own daemons qualify, never a shell that merely mentions the directory."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        line = cmdline(int(entry.name))
        argv0 = Path(line.split(" ", 1)[0]).name
        if text in line and (argv0 in SANDBOX_PROGRAMS or any(f" -m {m} " in line for m in SANDBOX_MODULES)):
            found.append(int(entry.name))
    return found


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.05, log_path: Path | None = None,
               pid: int | None = None):
    """Until `predicate()` holds; an error with the log's last lines after `timeout`, or at once when the
    process `pid` (the one being waited for) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if pid is not None and not alive(pid):
            raise SandboxError(f"{what} exited before it was ready{_tail(log_path)}")
        time.sleep(interval)
    raise SandboxError(f"{what} not ready within {timeout:g} s{_tail(log_path)}")


def _tail(log_path: Path | None) -> str:
    if not (log_path and log_path.exists()):
        return ""
    return "\n  last log lines:\n    " + "\n    ".join(log_path.read_text(errors="replace").splitlines()[-8:])
