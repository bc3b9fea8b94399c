"""Shared fixtures: the sandbox's real servers start once per test session (per xdist worker) through
the same code as `migrate sandbox up`, and stop when the session ends, whatever happened."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.adapters.db import Session, quote_ident
from migrate.capabilities import replication
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.sandbox import Sandbox
from tests.helpers import Reusable

BACKEND = os.environ.get("MIGRATE_TEST_BACKEND", "sandbox")


# MIGRATE_TEST_ORDER=reverse | shuffle | shuffle:SEED runs the suite in another order, to show that no test
# depends on another's leftovers (`make test-order`). Each module's tests stay together (its module-scoped
# sandbox starts once) but the modules and the tests within each are reordered. A shuffle without a seed
# picks one, exported so that xdist's workers collect the same order; the header names it to replay.
ORDER_VAR = "MIGRATE_TEST_ORDER"


def _order() -> tuple[str, int | None]:
    value = os.environ.get(ORDER_VAR, "").strip()
    kind, _, seed = value.partition(":")
    if kind not in ("", "reverse", "shuffle") or (seed and (kind != "shuffle" or not seed.isdigit())):
        raise pytest.UsageError(f"{ORDER_VAR}={value!r}: expected reverse, shuffle or shuffle:SEED")
    return kind, int(seed) if seed else None


def pytest_configure(config):
    kind, seed = _order()
    if kind == "shuffle" and seed is None:  # the controller picks it; workers inherit the environment
        os.environ[ORDER_VAR] = f"shuffle:{random.SystemRandom().randrange(10**6)}"


def pytest_report_header(config):
    kind, seed = _order()
    if kind:
        return f"test order: {kind}{f':{seed}' if seed is not None else ''} ({ORDER_VAR})"
    return None


# The longest modules (seconds, summed over their tests with 3 workers on 2 cores, 2026-12-03), sent to the workers
# first by default: `--dist loadfile` hands out modules in collection order, and one of these begun last is the
# whole run's tail (a clean run took 656 s or 777 s depending on when the kill matrix began).
SLOW_FIRST = ("test_kill_matrix", "test_net_faults", "test_repoint_methods", "test_write_block_methods",
              "test_bad_night", "test_rehearse", "test_verify", "test_seed_hard_schema", "test_lag", "test_start")


def _slowest_first(name: str) -> int:
    stem = name.rsplit("/", 1)[-1].removesuffix(".py")
    return SLOW_FIRST.index(stem) if stem in SLOW_FIRST else len(SLOW_FIRST)


def _reorder(items: list, kind: str, seed: int | None) -> None:
    modules: dict[str, list] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    groups = list(modules.values())
    if kind == "slow_first":
        groups.sort(key=lambda group: _slowest_first(group[0].nodeid.split("::")[0]))
    elif kind == "reverse":
        groups.reverse()
        for group in groups:
            group.reverse()
    else:
        rng = random.Random(seed)
        rng.shuffle(groups)
        for group in groups:
            rng.shuffle(group)
    items[:] = [item for group in groups for item in group]


def pytest_collection_modifyitems(config, items):
    kind, seed = _order()
    _reorder(items, kind or "slow_first", seed)
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


@pytest.fixture(autouse=True)
def _sandbox_replica_still_follows(request) -> Iterator[None]:
    """The session's sandbox is shared: a test that broke its replica server (which replays every binlogged
    change of the source, as an RDS read replica does) fails itself rather than a later test."""
    yield
    if BACKEND != "sandbox" or "sandbox" not in request.fixturenames:
        return
    sb = request.getfixturevalue("sandbox")
    with sb.replica.root() as r:
        status = replication.read_status(r)
    assert status.configured and status.healthy, f"the shared sandbox's replica server stopped: {status}"


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
def rds_retention(master) -> Iterator[None]:
    """For a test that changes the source's RDS 'binlog retention hours': put back as it was afterwards."""
    rows = {r["name"]: r["value"] for r in master.run("CALL mysql.rds_show_configuration")}
    yield
    master.run("CALL mysql.rds_set_configuration('binlog retention hours', %s)", (rows["binlog retention hours"],))


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


@pytest.fixture(scope="module")
def started_module_sandbox() -> Iterator[Reusable]:
    """A sandbox of the module's own with `migrate start` done, made when a test first asks for it (a test that
    migrates it for good calls `used_up()`), brought down at the end of the module."""
    from tests.switching import started_sandbox

    made = Reusable(started_sandbox)
    try:
        yield made
    finally:
        made.used_up()
