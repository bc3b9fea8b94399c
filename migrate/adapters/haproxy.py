"""HAProxy's runtime API over its unix admin socket: one command per connection, errors named.

The answers parsed here are HAProxy 2.6's (checked against 2.6.12):

    > show servers state mysql
    1
    # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... srv_fqdn srv_port ...
    3 mysql 1 db 127.0.0.1 2 0 1 1 1 1 0 2 0 0 0 0 - 39112 - 0 0 - - 0

    > show stat mysql 4 -1          (CSV, server rows of one backend; `scur` = current sessions)
    # pxname,svname,qcur,qmax,scur,...
    mysql,db,0,0,3,3,,3,...

    > set server mysql/db addr 127.0.0.2 port 39112
    IP changed from '127.0.0.1' to '127.0.0.2', port changed from '39113' to '39112' by 'stats socket command'
    > set server mysql/db addr localhost port 1       ->  Invalid addr 'localhost' by 'stats socket command'
    > shutdown sessions server mysql/db               ->  (empty answer)

Errors come back as text, not as a status: "Unknown command, but maybe ...", "Permission denied"
(socket below `level admin`), "No such backend.", "No such server.", "Can't find backend."
(show servers state), "No such proxy." (show stat), "Require 'backend/server'.".
"""

from __future__ import annotations

import csv
import ipaddress
import re
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path

from migrate import log
from migrate.adapters.executor import Executor
from migrate.errors import MigrateError

# HAProxy's proxy and server names: letters, digits, '-', '_', '.', ':' (anything else, ';' above
# all, would let one name smuggle a second command onto the socket).
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")

_NAMES_HINT = ("check cutover.repoint.haproxy.backend and .server against haproxy.cfg "
               "(`show servers state` on the socket lists every backend and server)")

# First words of HAProxy 2.6's error answers, with what to do about each.
_ERRORS: tuple[tuple[str, str], ...] = (
    ("Unknown command", "this HAProxy does not know the command: check `haproxy -v` (the runtime API "
                        "commands used here need HAProxy 1.8 or later)"),
    ("Permission denied", "the socket answers below `level admin`: add `level admin` to its `stats socket` "
                          "line in haproxy.cfg and reload HAProxy"),
    ("No such backend", _NAMES_HINT),
    ("No such server", _NAMES_HINT),
    ("No such proxy", _NAMES_HINT),
    ("Can't find backend", _NAMES_HINT),
    ("Require ", "the command was malformed (a bug in migrate: please report it with this message)"),
    ("usage:", "the command was malformed (a bug in migrate: please report it with this message)"),
    ("Invalid ", "HAProxy refused the value; it wants an IP address and a port"),
)

_FAILURES = {FileNotFoundError: "missing", ConnectionRefusedError: "refused", PermissionError: "permission",
             TimeoutError: "timeout", socket.timeout: "timeout"}

# The client run on the HAProxy host for one command (on stdin): python3 when there, else socat; 127 when neither.
_REMOTE_PY = """
import socket, sys
codes = {FileNotFoundError: 10, ConnectionRefusedError: 11, PermissionError: 12, TimeoutError: 13}
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(float(sys.argv[2]))
    s.connect(sys.argv[1])
    s.sendall(sys.stdin.buffer.read())
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        sys.stdout.buffer.write(chunk)
except OSError as exc:
    sys.stderr.write((exc.strerror or str(exc)) + chr(10))
    sys.exit(codes.get(type(exc), 14))
"""
_REMOTE_CLIENT = ("if command -v python3 >/dev/null 2>&1; then python3 -c {script} {sock} {timeout}; "
                  "elif command -v socat >/dev/null 2>&1; then socat -t {timeout} - UNIX-CONNECT:{sock}; "
                  "else exit 127; fi")
_REMOTE_EXITS = {10: "missing", 11: "refused", 12: "permission", 13: "timeout", 14: "other"}
_SOCAT_WORDS = {"missing": ("No such file",), "refused": ("Connection refused",),
                "permission": ("Permission denied",), "timeout": ("timed out",)}

OP_STATES = {0: "stopped", 1: "starting", 2: "running", 3: "stopping"}
ADMIN_FLAGS = {0x01: "maint (forced)", 0x02: "maint (inherited)", 0x04: "maint (config)",
               0x08: "drain (forced)", 0x10: "drain (inherited)", 0x20: "maint (resolution failed)",
               0x40: "fqdn set at runtime"}
_MAINT = 0x01 | 0x02 | 0x04 | 0x20


class HaproxyError(MigrateError):
    """HAProxy's runtime API refused a command or answered something unexpected."""

    def __init__(self, message: str, *, hint: str | None = None, answer: str = ""):
        super().__init__(message, hint=hint)
        self.answer = answer


class HaproxyUnreachable(HaproxyError):
    """The admin socket is missing, refused the connection or did not answer."""


@dataclass(frozen=True)
class ServerState:
    backend: str
    server: str
    addr: str
    port: int
    op_state: int  # 0 stopped, 1 starting, 2 running, 3 stopping
    admin_state: int  # bit mask, see ADMIN_FLAGS
    sessions: int  # current sessions on this server (`scur`)
    fqdn: str | None = None

    @property
    def op_state_name(self) -> str:
        return OP_STATES.get(self.op_state, f"unknown ({self.op_state})")

    @property
    def admin_state_names(self) -> list[str]:
        return [name for bit, name in ADMIN_FLAGS.items() if self.admin_state & bit]

    @property
    def in_maintenance(self) -> bool:
        return bool(self.admin_state & _MAINT)

    def describe(self) -> str:
        admin = ", ".join(self.admin_state_names) or "ready"
        return (f"{self.backend}/{self.server} -> {self.addr}:{self.port} ({self.op_state_name}, {admin}, "
                f"{self.sessions} session{'' if self.sessions == 1 else 's'})")


def check_name(what: str, name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise HaproxyError(f"{what} name {name!r} is not a valid HAProxy name (letters, digits, '-', '_', '.', ':')",
                           hint=_NAMES_HINT)
    return name


def check_port(port: int) -> int:
    # HAProxy itself takes 70000 and silently wraps it to 4464: refuse before it gets there.
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise HaproxyError(f"port {port!r} is not a TCP port (1-65535)", hint="check the target's port")
    return port


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def same_ip(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def resolve(host: str, port: int) -> str:
    """The IP for `host`: itself if it is one, else the first address getaddrinfo gives (the system's
    preference order, as a client connecting to it would use)."""
    if is_ip(host):
        return str(ipaddress.ip_address(host))
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise HaproxyError(f"cannot resolve {host!r} to an IP address for HAProxy: {exc.strerror}",
                           hint="HAProxy's runtime API takes an IP: fix the name (DNS, /etc/hosts) or give "
                                "the target's IP address") from None
    return str(infos[0][4][0])


class HaproxyAdmin:
    """HAProxy's runtime API on a unix socket (`stats socket ... level admin` in haproxy.cfg), on this host or,
    with `executor`, on the host that executor reaches (over SSH: one command per call, sent by a small client run
    there)."""

    def __init__(self, socket_path: Path, timeout: float = 5.0, executor: Executor | None = None):
        self.socket_path = Path(socket_path)
        self.timeout = timeout
        self.executor = executor

    @property
    def where(self) -> str:
        return str(self.socket_path) if self.executor is None else f"{self.socket_path} on {self.executor.label}"

    # -- the wire ------------------------------------------------------------------------------------

    def command(self, line: str) -> str:
        """Send one command on its own connection and return HAProxy's answer (trailing blank lines
        removed); raise HaproxyError when the answer is one of HAProxy's error messages."""
        if "\n" in line or "\r" in line or ";" in line:
            raise HaproxyError(f"refusing to send {line!r} to HAProxy: one command per call, no ';' or newline")
        answer = self._exchange(line)
        first = answer.lstrip().split("\n", 1)[0].strip()
        for prefix, hint in _ERRORS:
            if first.startswith(prefix):
                first = first.split(",")[0] if prefix == "Unknown command" else first
                raise HaproxyError(f"HAProxy ({self.where}) refused `{line}`: {first}", hint=hint,
                                   answer=answer)
        return answer

    def _exchange(self, line: str) -> str:
        log.get().debug("haproxy command", socket=self.where, command=line)
        if self.executor is not None:
            return self._exchange_remote(line)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(str(self.socket_path))
                s.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise self._unreachable(_FAILURES.get(type(exc), "other"), line, exc.strerror or str(exc)) from None
        return b"".join(chunks).decode("utf-8", "replace").rstrip("\n")

    def _exchange_remote(self, line: str) -> str:
        """The command on the socket of the executor's host: python3 there (a stock Debian host has it), else
        socat; the failure kinds come back as exit codes so that the errors read as the local socket's."""
        command = _REMOTE_CLIENT.format(sock=shlex.quote(str(self.socket_path)), timeout=self.timeout,
                                        script=shlex.quote(_REMOTE_PY))
        try:
            result = self.executor.run(command, timeout=self.timeout + 30, input=line.encode() + b"\n", check=False)
        except MigrateError as exc:
            raise HaproxyUnreachable(f"cannot reach the host of HAProxy's admin socket {self.where}: {exc.message}",
                                     hint=exc.hint or "check cutover.repoint.haproxy.via_ssh") from None
        if result.ok:
            return result.text.rstrip("\n")
        detail = result.stderr.strip().splitlines()[-1:] or [f"exit {result.exit_status}"]
        if result.exit_status == 127:
            raise HaproxyUnreachable(f"neither python3 nor socat is installed on {self.executor.label}, so HAProxy's "
                                     f"admin socket {self.socket_path} cannot be reached there",
                                     hint=f"install one of them on {self.executor.label} "
                                          "(apt-get install python3, or socat)")
        kind = _REMOTE_EXITS.get(result.exit_status)
        if kind is None:  # socat: its message says what went wrong
            text = detail[0]
            kind = next((k for k, words in _SOCAT_WORDS.items() if any(w in text for w in words)), "other")
        raise self._unreachable(kind, line, detail[0])

    def _unreachable(self, kind: str, line: str, detail: str) -> HaproxyUnreachable:
        path, here = self.where, "this host" if self.executor is None else self.executor.label
        if kind == "missing":
            return HaproxyUnreachable(
                f"HAProxy's admin socket {path} does not exist",
                hint=f"check cutover.repoint.haproxy.socket against the `stats socket` line of haproxy.cfg, "
                     f"and that HAProxy runs on {here}")
        if kind == "refused":
            return HaproxyUnreachable(
                f"HAProxy's admin socket {path} refused the connection (a stale socket file: is HAProxy "
                "running?)", hint="start or reload HAProxy, then check that the socket path is the one "
                                  "its `stats socket` line names")
        if kind == "permission":
            return HaproxyUnreachable(
                f"no permission to open HAProxy's admin socket {path}",
                hint="run migrate as the socket's owner (or root), or give the `stats socket` line a "
                     "`user`/`group`/`mode` that lets this user in" + ("" if self.executor is None else
                                                                        " (or set via_ssh.sudo: true)"))
        if kind == "timeout":
            return HaproxyUnreachable(f"HAProxy's admin socket {path} did not answer `{line}` within "
                                      f"{self.timeout:g} s", hint="check that HAProxy is healthy "
                                                                  "(not stuck, not overloaded)")
        return HaproxyUnreachable(f"cannot talk to HAProxy's admin socket {path}: {detail}",
                                  hint="check cutover.repoint.haproxy.socket and that HAProxy runs")

    # -- helpers -------------------------------------------------------------------------------------

    def cli_level(self) -> str | None:
        """`admin`, `operator` or `user`; None when this HAProxy cannot say (before 2.0)."""
        try:
            return self.command("show cli level").strip() or None
        except HaproxyError as exc:
            if exc.answer.startswith("Unknown command"):
                return None
            raise

    def server_state(self, backend: str, server: str) -> ServerState:
        check_name("backend", backend)
        check_name("server", server)
        row = self._state_row(backend, server)
        try:
            state = ServerState(backend=backend, server=server, addr=row["srv_addr"], port=int(row["srv_port"]),
                                op_state=int(row["srv_op_state"]), admin_state=int(row["srv_admin_state"]),
                                sessions=self.backend_sessions(backend, server),
                                fqdn=None if row.get("srv_fqdn", "-") == "-" else row["srv_fqdn"])
        except (KeyError, ValueError) as exc:
            raise HaproxyError(f"cannot read `show servers state {backend}` for {server}: missing or odd "
                               f"field {exc}", hint="report this HAProxy version (`haproxy -v`) as unsupported",
                               answer=str(row)) from None
        return state

    def _state_row(self, backend: str, server: str) -> dict[str, str]:
        answer = self.command(f"show servers state {backend}")
        lines = [line for line in answer.splitlines() if line.strip()]
        if len(lines) < 2 or not lines[1].startswith("#"):
            raise HaproxyError(f"unexpected answer to `show servers state {backend}`: {answer[:200]!r}",
                               hint="report this HAProxy version (`haproxy -v`) as unsupported", answer=answer)
        if lines[0].strip() != "1":
            log.get().warning("haproxy servers state format is not version 1; reading it by its header",
                              version=lines[0].strip())
        header = lines[1].lstrip("#").split()
        for line in lines[2:]:
            row = dict(zip(header, line.split(), strict=False))
            if row.get("be_name") == backend and row.get("srv_name") == server:
                return row
        known = sorted({line.split()[3] for line in lines[2:] if len(line.split()) > 3})
        raise HaproxyError(f"HAProxy backend {backend} has no server {server!r} (it has: "
                           f"{', '.join(known) or 'none'})", hint=_NAMES_HINT, answer=answer)

    def backend_sessions(self, backend: str, server: str) -> int:
        """Current sessions on one server (`scur` of `show stat <backend> 4 -1`)."""
        check_name("backend", backend)
        check_name("server", server)
        answer = self.command(f"show stat {backend} 4 -1")
        lines = answer.splitlines()
        if not lines or not lines[0].startswith("#"):
            raise HaproxyError(f"unexpected answer to `show stat {backend} 4 -1`: {answer[:200]!r}",
                               hint="report this HAProxy version (`haproxy -v`) as unsupported", answer=answer)
        rows = csv.DictReader([lines[0].lstrip("# ")] + lines[1:])
        for row in rows:
            if row.get("pxname") == backend and row.get("svname") == server:
                try:
                    return int(row["scur"] or 0)
                except ValueError:
                    break
        raise HaproxyError(f"HAProxy's statistics list no server {backend}/{server}",
                           hint=_NAMES_HINT, answer=answer)

    def session_route(self, src_port: int) -> tuple[str, str] | None:
        """(backend, server) of the client session whose source port is `src_port` (`show sess`), or None
        when no session of HAProxy's comes from that port."""
        for line in self.command("show sess").splitlines():
            fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
            if fields.get("src", "").rpartition(":")[2] == str(int(src_port)):
                return fields.get("be", ""), fields.get("srv", "")
        return None

    def set_server_addr(self, backend: str, server: str, host: str, port: int) -> str:
        """Point one server at host:port for new connections; returns the IP used (HAProxy's runtime API
        takes an IP, so a host name is resolved here first)."""
        check_name("backend", backend)
        check_name("server", server)
        check_port(port)
        ip = resolve(host, port)
        if ip != host:
            log.get().info("resolved for haproxy", host=host, ip=ip)
        answer = self.command(f"set server {backend}/{server} addr {ip} port {port}")
        if not ("changed from" in answer or "no need to change" in answer) or \
                any(bad in answer for bad in ("Invalid", "problem", "not supported", "failed")):
            raise HaproxyError(f"HAProxy did not take {ip}:{port} for {backend}/{server}: {answer.strip()}",
                               hint="check the address and port; HAProxy's answer says what it refused",
                               answer=answer)
        log.get().info("haproxy server address set", server=f"{backend}/{server}", answer=answer.strip())
        return ip

    def shutdown_sessions(self, backend: str, server: str) -> None:
        """Close every session currently attached to one server (HAProxy answers nothing on success)."""
        check_name("backend", backend)
        check_name("server", server)
        answer = self.command(f"shutdown sessions server {backend}/{server}")
        if answer.strip():
            raise HaproxyError(f"unexpected answer to `shutdown sessions server {backend}/{server}`: "
                               f"{answer.strip()[:200]}", hint="check HAProxy's log", answer=answer)
