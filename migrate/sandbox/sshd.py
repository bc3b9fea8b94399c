"""A real OpenSSH server on a loopback port standing in for the target's EC2 host.

Its host key, the client key pair and a known_hosts line naming `[127.0.0.1]:port` live in its
directory; it accepts only that key. Its HOME is that directory too, as on a host of its own: bash runs
~/.bashrc for every SSH command, and this machine's own (e.g. `pyenv init`, ~100 ms) would otherwise be timed
as the sandbox host's.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from migrate.errors import SandboxError
from migrate.sandbox import procs


@dataclass
class SshServer:
    base: Path
    port: int
    home: Path | None = None  # where every command starts (a host of its own: relative paths resolve there)

    @property
    def host_key(self) -> Path:
        return self.base / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        return self.base / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.base / "known_hosts"

    @property
    def pid_file(self) -> Path:
        return self.base / "sshd.pid"

    @property
    def user(self) -> str:
        return getpass.getuser()

    def prepare(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
        for key in (self.host_key, self.client_key):
            if not key.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"migrate-sandbox-{key.name}",
                                "-f", str(key)], check=True, capture_output=True, timeout=30)
        (self.base / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        (self.base / "authorized_keys").chmod(0o600)
        host_pub = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        config = f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.host_key}
PidFile {self.pid_file}
AuthorizedKeysFile {self.base}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
AllowUsers {self.user}
Subsystem sftp internal-sftp
LogLevel ERROR
SetEnv HOME={self.base}
""" + (f'ForceCommand cd {self.home} && eval "$SSH_ORIGINAL_COMMAND"\n' if self.home else "")
        (self.base / "sshd_config").write_text(config)

    def start(self) -> None:
        if self.running():
            return
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        sshd = procs.find_program("sshd")
        check = subprocess.run([sshd, "-t", "-f", str(self.base / "sshd_config")], capture_output=True, text=True)
        if check.returncode != 0:
            raise SandboxError(f"sshd refuses its configuration: {check.stderr.strip()}")
        procs.spawn([sshd, "-D", "-e", "-f", str(self.base / "sshd_config")], log_path=self.base / "sshd.log",
                    pid_path=self.base / "launcher.pid")
        procs.wait_until(lambda: procs.port_open(self.port), timeout=15, what=f"sshd on port {self.port}",
                         log_path=self.base / "sshd.log")

    def running(self) -> bool:
        pid = procs.read_pid(self.base / "launcher.pid")
        return procs.alive(pid) and procs.port_open(self.port)

    def stop(self) -> None:
        procs.stop(procs.read_pid(self.base / "launcher.pid"))
