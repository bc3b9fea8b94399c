"""A real HAProxy in TCP mode: the application's database endpoint, with its runtime API on a socket."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from migrate.adapters.haproxy import HaproxyAdmin, HaproxyError
from migrate.errors import SandboxError
from migrate.sandbox import procs

BACKEND = "mysql"
SERVER = "db"
REHEARSAL_BACKEND = "rehearsal"  # the fire drill's own endpoint: `migrate rehearse` moves it, never BACKEND


@dataclass
class HaproxyServer:
    base: Path
    port: int  # where the application connects
    backend_port: int  # the database behind it (the source, at first)
    rehearsal_port: int | None = None  # the rehearsal's endpoint (REHEARSAL_BACKEND -> the source, at first)
    backend_host: str = "127.0.0.1"
    # Reloadable: the application's backend in a file of its own (backend.cfg, which an ssh_file repoint rewrites),
    # HAProxy in master-worker mode so that `reload()` is graceful (open connections stay with the old worker).
    reloadable: bool = False

    @property
    def admin_socket(self) -> Path:
        return self.base / "admin.sock"

    @property
    def config(self) -> Path:
        return self.base / "haproxy.cfg"

    @property
    def backend_config(self) -> Path:
        return self.base / "backend.cfg"

    def backend_section(self, host: str, port: int) -> str:
        return f"backend {BACKEND}\n    server {SERVER} {host}:{port}\n"

    def prepare(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        # No health check: TCP probes that never authenticate count as MySQL connect errors.
        backend = self.backend_section(self.backend_host, self.backend_port)
        if self.reloadable:
            self.backend_config.write_text(backend)
        self.config.write_text(f"""global
    stats socket {self.admin_socket} mode 600 level admin
    maxconn 2000

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h

frontend app_db
    bind 127.0.0.1:{self.port}
    default_backend {BACKEND}

""" + ("" if self.reloadable else backend) + ("" if self.rehearsal_port is None else f"""
frontend rehearsal_db
    bind 127.0.0.1:{self.rehearsal_port}
    default_backend {REHEARSAL_BACKEND}

backend {REHEARSAL_BACKEND}
    server {SERVER} {self.backend_host}:{self.backend_port}
"""))

    def start(self) -> None:
        if self.running():
            return
        self.admin_socket.unlink(missing_ok=True)
        procs.spawn([procs.find_program("haproxy"), *self._args()],
                    log_path=self.base / "haproxy.log", pid_path=self.base / "haproxy.pid")
        procs.wait_until(lambda: procs.port_open(self.port) and self.admin_socket.exists()
                         and (self.rehearsal_port is None or procs.port_open(self.rehearsal_port)), timeout=15,
                         what=f"HAProxy on port {self.port}", log_path=self.base / "haproxy.log")

    def _args(self) -> list[str]:
        files = ["-f", str(self.config)] + (["-f", str(self.backend_config)] if self.reloadable else [])
        return (["-W"] if self.reloadable else []) + ["-db", *files]

    def reload(self, timeout: float = 10.0) -> str:
        """Check the configuration, then reload gracefully (SIGUSR2 to the master: a new worker takes new
        connections, the old one keeps its open ones), and wait until the new worker serves backend.cfg's server."""
        haproxy = procs.find_program("haproxy")
        checked = subprocess.run([haproxy, "-c", "-q", *self._args()[2:]], capture_output=True, text=True, timeout=30)
        if checked.returncode != 0:
            raise SandboxError(f"HAProxy refuses its configuration: {checked.stderr.strip()[-500:]}")
        found = re.search(rf"server {SERVER} (\S+):(\d+)", self.backend_config.read_text())
        if not found:
            raise SandboxError(f"{self.backend_config} has no `server {SERVER} host:port` line")
        wanted = (found.group(1), int(found.group(2)))
        master = procs.read_pid(self.base / "haproxy.pid")
        if not procs.alive(master):
            raise SandboxError(f"HAProxy in {self.base} is not running")
        os.kill(master, signal.SIGUSR2)

        def serving() -> bool:
            try:
                state = HaproxyAdmin(self.admin_socket, timeout=1).server_state(BACKEND, SERVER)
            except HaproxyError:
                return False  # the new worker is still starting
            return (state.addr, state.port) == wanted

        procs.wait_until(serving, timeout=timeout, what=f"HAProxy reloaded to {wanted[0]}:{wanted[1]}",
                         log_path=self.base / "haproxy.log")
        return f"HAProxy (master {master}) reloaded: {BACKEND}/{SERVER} -> {wanted[0]}:{wanted[1]}"

    def running(self) -> bool:
        return procs.alive(procs.read_pid(self.base / "haproxy.pid")) and procs.port_open(self.port)

    def command(self, line: str) -> str:
        """One runtime API command on the admin socket (raises HaproxyError on HAProxy's error answers)."""
        return HaproxyAdmin(self.admin_socket).command(line)

    def stop(self) -> None:
        procs.stop(procs.read_pid(self.base / "haproxy.pid"))
