"""MIGRATE_TEST_BACKEND=docker: the server-pair tests against docker/compose.yml (MySQL 8.0 source and
target). Ports and passwords come from docker/.env, the same file compose reads."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from migrate.adapters.db import Endpoint, connect

ENV_FILE = Path(__file__).resolve().parents[1] / "docker" / ".env"


def _env() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_FILE.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def docker_pair():
    from tests.conftest import Pair

    env = _env()

    def root(port_key: str, label: str):
        return connect(Endpoint("127.0.0.1", int(env[port_key]), "root", SecretStr(env["MYSQL_ROOT_PASSWORD"]),
                                label=label), attempts=5)

    return Pair(root("SOURCE_PORT", "source"), root("TARGET_PORT", "target"), root("SOURCE_PORT", "source"),
                root("TARGET_PORT", "target"), "source", 3306)
