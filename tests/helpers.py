"""Small helpers the tests share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from migrate.adapters.db import Endpoint, Session, connect

ROOT = Path(__file__).resolve().parents[1]


def run_migrate(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real `migrate` command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=ROOT)


def endpoint_as(server_port: int, user: str, password: str, label: str = "server") -> Endpoint:
    from pydantic import SecretStr

    return Endpoint("127.0.0.1", server_port, user, SecretStr(password), label=label)


def open_session(ep: Endpoint) -> Session:
    return connect(ep, attempts=1)
