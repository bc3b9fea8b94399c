"""Shared fixtures: the sandbox's real servers start once per test session (per xdist worker) through
the same code as `migrate sandbox up`, and stop when the session ends, whatever happened."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.adapters.db import Session, quote_ident
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.sandbox import Sandbox

BACKEND = os.environ.get("MIGRATE_TEST_BACKEND", "sandbox")


def pytest_collection_modifyitems(config, items):
    if BACKEND == "docker":
        skip = pytest.mark.skip(reason="needs the MariaDB sandbox (RDS emulation, sshd, HAProxy); "
                                       "MIGRATE_TEST_BACKEND=docker runs the server-pair tests only")
        for item in items:
            if "sandbox" in item.fixturenames or "fresh_sandbox_dir" in item.fixturenames:
                item.add_marker(skip)


@dataclass
class Pair:
    """A source and a target as `migrate` sees them, plus root sessions for test bookkeeping."""

    source: Session  # the account migrate uses on the source (the RDS master user in the sandbox)
    target: Session
    source_root: Session
    target_root: Session
    source_host_from_target: str
    source_port_from_target: int


@pytest.fixture
def pair(request) -> Iterator[Pair]:
    if BACKEND == "docker":
        from tests.docker_backend import docker_pair

        made = docker_pair()
    else:
        sb = request.getfixturevalue("sandbox")
        made = Pair(sb.master(), sb.target.root(), sb.source.root(), sb.target.root(), "127.0.0.1",
                    sb.ports["source"])
    yield made
    for s in (made.source, made.target, made.source_root, made.target_root):
        s.close()


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Iterator[Sandbox]:
    directory = tmp_path_factory.mktemp("sb")
    sb = None
    try:
        sb, _ = sandbox_mod.up(directory, rows=2000)
        yield sb
    finally:
        if (directory / sandbox_mod.MANIFEST).exists():
            sandbox_mod.down(directory)


@pytest.fixture
def source_root(sandbox) -> Iterator[Session]:
    with sandbox.source.root() as s:
        yield s


@pytest.fixture
def target_root(sandbox) -> Iterator[Session]:
    with sandbox.target.root() as s:
        yield s


@pytest.fixture
def master(sandbox) -> Iterator[Session]:
    """The source's RDS-like master user."""
    with sandbox.master() as s:
        yield s


@pytest.fixture
def schema(pair) -> Iterator[str]:
    """A schema of this test's own, dropped from both servers afterwards (without binary logging)."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    for s in (pair.source_root, pair.target_root):
        s.run("SET SESSION sql_log_bin = 0")
        s.run(f"DROP DATABASE IF EXISTS {quote_ident(name)}")
        s.run("SET SESSION sql_log_bin = 1")


@pytest.fixture
def set_global(source_root, target_root):
    """SET GLOBAL on a server for one test, put back afterwards."""
    changed = []

    def setter(session, name, value):
        changed.append((session, name, session.variable(name)))
        session.run(f"SET GLOBAL {name} = %s", (value,))

    yield {"source": lambda n, v: setter(source_root, n, v), "target": lambda n, v: setter(target_root, n, v)}
    for session, name, old in reversed(changed):
        session.run(f"SET GLOBAL {name} = %s", (old,))


@pytest.fixture
def fresh_sandbox_dir() -> Iterator[Path]:
    """A directory for a sandbox of the test's own (short: unix socket paths are limited); whatever it
    started is stopped afterwards."""
    parent = Path(tempfile.mkdtemp(prefix="mig-", dir="/tmp"))
    directory = parent / "sb"
    yield directory
    if (directory / sandbox_mod.MANIFEST).exists():
        sandbox_mod.down(directory)
    shutil.rmtree(parent, ignore_errors=True)
