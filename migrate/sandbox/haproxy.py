"""A real HAProxy in TCP mode: the application's database endpoint, with its runtime API on a socket."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from migrate.adapters.haproxy import HaproxyAdmin
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

    @property
    def admin_socket(self) -> Path:
        return self.base / "admin.sock"

    @property
    def config(self) -> Path:
        return self.base / "haproxy.cfg"

    def prepare(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        # No health check: TCP probes that never authenticate count as MySQL connect errors.
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

backend {BACKEND}
    server {SERVER} 127.0.0.1:{self.backend_port}
""" + ("" if self.rehearsal_port is None else f"""
frontend rehearsal_db
    bind 127.0.0.1:{self.rehearsal_port}
    default_backend {REHEARSAL_BACKEND}

backend {REHEARSAL_BACKEND}
    server {SERVER} 127.0.0.1:{self.backend_port}
"""))

    def start(self) -> None:
        if self.running():
            return
        self.admin_socket.unlink(missing_ok=True)
        procs.spawn([procs.find_program("haproxy"), "-db", "-f", str(self.config)],
                    log_path=self.base / "haproxy.log", pid_path=self.base / "haproxy.pid")
        procs.wait_until(lambda: procs.port_open(self.port) and self.admin_socket.exists()
                         and (self.rehearsal_port is None or procs.port_open(self.rehearsal_port)), timeout=15,
                         what=f"HAProxy on port {self.port}", log_path=self.base / "haproxy.log")

    def running(self) -> bool:
        return procs.alive(procs.read_pid(self.base / "haproxy.pid")) and procs.port_open(self.port)

    def command(self, line: str) -> str:
        """One runtime API command on the admin socket (raises HaproxyError on HAProxy's error answers)."""
        return HaproxyAdmin(self.admin_socket).command(line)

    def stop(self) -> None:
        procs.stop(procs.read_pid(self.base / "haproxy.pid"))
