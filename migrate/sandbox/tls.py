"""A throwaway certificate authority and a server certificate for 127.0.0.1, so the sandbox's servers can
speak TLS exactly as RDS does (the playbook's source.tls.mode: required with ca_file)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from migrate.errors import SandboxError


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SandboxError(f"openssl {args[0]} failed: {result.stderr.strip()[-300:]}",
                           hint="install openssl (make demo does)")


def make_certificates(directory: Path) -> dict[str, Path]:
    """ca.pem, server-cert.pem and server-key.pem in `directory` (0700); reused when present."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = {"ca": directory / "ca.pem", "cert": directory / "server-cert.pem", "key": directory / "server-key.pem"}
    if all(p.exists() for p in files.values()):
        return files
    (directory / "san.cnf").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=migrate sandbox CA",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem",
             "-out", "server.csr", cwd=directory)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
             "-days", "30", "-extfile", "san.cnf", "-out", "server-cert.pem", cwd=directory)
    for path in directory.iterdir():
        path.chmod(0o600)
    return files
