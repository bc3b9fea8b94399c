"""Repoint through HAProxy's runtime API: change the server's address, then shut the sessions that
still go to the old primary. Reads the address back before saying it is done."""

from __future__ import annotations

from migrate.adapters.db import Endpoint, connect
from migrate.adapters.executor import SshExecutor
from migrate.adapters.haproxy import HaproxyAdmin, HaproxyError, is_ip, resolve, same_ip
from migrate.capabilities.repoint.base import RepointCheckFailed, Repointer, RepointFailed
from migrate.playbook import HaproxyRepoint


class HaproxyRepointer(Repointer):
    method = "haproxy"

    def __init__(self, settings: HaproxyRepoint, admin: HaproxyAdmin | None = None):
        self.settings = settings
        self.backend = settings.backend
        self.server = settings.server
        via = settings.via_ssh
        self.admin = admin or HaproxyAdmin(settings.socket, executor=SshExecutor(via) if via else None)

    @property
    def _name(self) -> str:
        return f"HAProxy {self.backend}/{self.server}"

    def describe(self, host: str, port: int) -> str:
        where = f"{host}:{port}" if is_ip(host) else \
            f"{host}:{port} (resolved to an IP first: HAProxy's runtime API takes one)"
        return (f"set {self._name} to {where} over {self.admin.where} so that new connections go there, "
                "then shut the sessions still open on it (they go to the old primary)")

    def prepare(self, host: str, port: int) -> None:
        """Over SSH: connect now, before writes are blocked."""
        if self.admin.executor is not None:
            self.admin.executor.run("true", timeout=30)

    def current(self) -> tuple[str, int]:
        state = self.admin.server_state(self.backend, self.server)
        return state.addr, state.port

    def points_to(self, host: str, port: int) -> bool:
        state = self.admin.server_state(self.backend, self.server)
        return state.port == port and same_ip(state.addr, resolve(host, port))

    def point_to(self, host: str, port: int) -> str:
        before = self.admin.server_state(self.backend, self.server)
        ip = self.admin.set_server_addr(self.backend, self.server, host, port)
        try:
            open_sessions = self.admin.backend_sessions(self.backend, self.server)
            self.admin.shutdown_sessions(self.backend, self.server)
        except HaproxyError as exc:
            raise RepointFailed(
                f"{self._name} now sends new connections to {ip}:{port}, but the sessions still open to "
                f"{before.addr}:{before.port} were not shut: {exc.message}",
                hint=f"shut them by hand: echo 'shutdown sessions server {self.backend}/{self.server}' | "
                     f"socat - UNIX-CONNECT:{self.settings.socket}"
                     + (f" on {self.admin.executor.label}" if self.admin.executor else "")) from None
        after = self.admin.server_state(self.backend, self.server)
        if not (after.port == port and same_ip(after.addr, ip)):
            raise RepointFailed(
                f"{self._name} points to {after.addr}:{after.port} after being set to {ip}:{port}",
                hint="something else changes this server (another tool, a reload, DNS resolution in "
                     "haproxy.cfg): find it before retrying")
        resolved = "" if ip == host else f" ({host} resolved to {ip})"
        shut = (f"shut the {open_sessions} session{'' if open_sessions == 1 else 's'} still open on it"
                if open_sessions else "no session was open on it to shut")
        if same_ip(before.addr, ip) and before.port == port:
            return f"{self._name} already pointed to {ip}:{port}{resolved}; {shut}; over {self.admin.where}"
        return (f"{self._name} now sends new connections to {ip}:{port}{resolved} instead of "
                f"{before.addr}:{before.port}; {shut}; over {self.admin.where}")

    def carries(self, endpoint: Endpoint) -> bool:
        """Open a connection to `endpoint` and look for it among HAProxy's sessions on the repointed server."""
        with connect(endpoint, attempts=1, connect_timeout=3) as session:
            src_port = session.conn._sock.getsockname()[1]  # pymysql keeps its socket there
            route = self.admin.session_route(src_port)
        return route == (self.backend, self.server)

    def check(self) -> str:
        try:
            level = self.admin.cli_level()
            state = self.admin.server_state(self.backend, self.server)
        except HaproxyError as exc:
            raise RepointCheckFailed(exc.message, hint=exc.hint) from None
        if level is not None and level != "admin":
            raise RepointCheckFailed(
                f"HAProxy's socket {self.admin.where} answers at level {level}; changing a server's "
                "address needs level admin",
                hint="add `level admin` to the `stats socket` line in haproxy.cfg and reload HAProxy")
        note = "; note: it is in maintenance, so HAProxy sends it no connection" if state.in_maintenance else ""
        return (f"HAProxy's socket {self.admin.where} answers at level {level or 'unknown (old HAProxy)'}; "
                f"{state.describe()}{note}")
