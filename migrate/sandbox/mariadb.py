"""A real MariaDB server in a directory of its own: datadir, socket, pid file, log, free port, 127.0.0.1.

Used by `migrate sandbox` and by the test suite alike. The server's root account is reachable over
its unix socket with a generated password kept in a 0600 file beside it.
"""

from __future__ import annotations

import getpass
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
from pydantic import SecretStr

from migrate.adapters.db import Endpoint, Session, connect, quote_string
from migrate.errors import SandboxError
from migrate.sandbox import procs


def new_password() -> str:
    return secrets.token_urlsafe(18)


def write_secret(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(value + "\n")
    return path


@dataclass
class MariaDBServer:
    """One server. `options` are extra mariadbd flags (for example {"read-only": "1"})."""

    name: str
    base: Path
    port: int
    server_id: int
    options: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"  # the loopback address it binds (the route53 sandbox gives each server its own)

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket(self) -> Path:
        return self.base / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.base / "mysqld.pid"

    @property
    def log_file(self) -> Path:
        return self.base / "error.log"

    @property
    def tmpdir(self) -> Path:
        """The server's own temporary directory: servers started side by side never share temp files."""
        return self.base / "tmp"

    @property
    def root_password_file(self) -> Path:
        return self.base / "root.pw"

    def argv(self) -> list[str]:
        base = {
            "datadir": self.datadir, "port": self.port, "bind-address": self.host, "socket": self.socket,
            "pid-file": self.pid_file, "log-error": self.log_file, "server-id": self.server_id,
            "log-bin": self.datadir / "binlog", "relay-log": self.datadir / "relay", "binlog-format": "ROW",
            "binlog-row-image": "FULL", "skip-name-resolve": None, "innodb-buffer-pool-size": "128M",
            "innodb-log-file-size": "48M", "max-connections": "300", "character-set-server": "utf8mb4",
            "collation-server": "utf8mb4_unicode_ci", "user": getpass.getuser(),
            "max-connect-errors": "100000", "tmpdir": self.tmpdir,
        }
        merged = {**base, **self.options}
        argv = [procs.find_program("mariadbd"), "--no-defaults"]
        for key, value in merged.items():
            argv.append(f"--{key}" if value is None else f"--{key}={value}")
        return argv

    # -- lifecycle -------------------------------------------------------------------------------
    def initialized(self) -> bool:
        return (self.datadir / "mysql" / "global_priv.frm").exists() and self.root_password_file.exists()

    def init(self) -> None:
        """A fresh datadir, then a root password and no anonymous accounts (they shadow real ones)."""
        if self.datadir.exists():
            shutil.rmtree(self.datadir)
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.tmpdir.mkdir(exist_ok=True, mode=0o700)
        result = subprocess.run(
            [procs.find_program("mariadb-install-db"), "--no-defaults", f"--datadir={self.datadir}",
             f"--tmpdir={self.tmpdir}",
             f"--user={getpass.getuser()}", "--auth-root-authentication-method=normal", "--skip-test-db",
             "--skip-name-resolve"],
            capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise SandboxError(f"mariadb-install-db for {self.name} failed: {result.stderr[-500:]}")
        self.root_password_file.unlink(missing_ok=True)
        self.start()
        password = new_password()
        conn = pymysql.connect(unix_socket=str(self.socket), user="root", password="", autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT User, Host FROM mysql.user WHERE User = '' OR (User = 'root' AND Host <> 'localhost')")
                for user, host in cur.fetchall():
                    cur.execute(f"DROP USER {quote_string(user)}@{quote_string(host)}")
                cur.execute(f"ALTER USER 'root'@'localhost' IDENTIFIED BY {quote_string(password)}")
                cur.execute("SELECT @@log_bin")
                if cur.fetchone()[0]:
                    cur.execute("RESET MASTER")  # install-time statements must not reach a replica
        finally:
            conn.close()
        write_secret(self.root_password_file, password)

    def start(self) -> None:
        if self.running():
            return
        self.socket.unlink(missing_ok=True)
        self.tmpdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pid = procs.spawn(self.argv(), log_path=self.base / "stdout.log", pid_path=self.base / "launcher.pid")
        procs.wait_until(lambda: self.socket.exists() and self.answers(), timeout=60,
                         what=f"MariaDB {self.name} on port {self.port}", log_path=self.log_file, pid=pid)

    def running(self) -> bool:
        return procs.alive(procs.read_pid(self.pid_file)) and self.answers()

    def answers(self) -> bool:
        try:
            conn = pymysql.connect(unix_socket=str(self.socket), user="__ping__", connect_timeout=1)
            conn.close()
        except pymysql.err.OperationalError as exc:
            return exc.args[0] == 1045  # access denied means the server is up and answering
        except OSError:
            return False
        return True

    def stop(self) -> None:
        pid = procs.read_pid(self.pid_file) or procs.read_pid(self.base / "launcher.pid")
        procs.stop(pid, timeout=60)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- access ----------------------------------------------------------------------------------
    def root_endpoint(self) -> Endpoint:
        password = self.root_password_file.read_text().strip()
        return Endpoint("localhost", self.port, "root", SecretStr(password), unix_socket=str(self.socket),
                        label=self.name)

    def root(self) -> Session:
        return connect(self.root_endpoint())

    def endpoint(self, user: str, password: str) -> Endpoint:
        return Endpoint(self.host, self.port, user, SecretStr(password), label=self.name)
