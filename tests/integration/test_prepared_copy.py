"""A physical copy taken while transactions sat between InnoDB's prepare and their commit (group commit,
parallel replication) holds them prepared, with no binary log to decide them: MariaDB then refuses to start
("Found N prepared transactions!", MDEV-36025). Measured: the rehearsal's clone of the target failed so under
500 writes/s. The seed rolls them back with one recovery pass before the server's own start.

The condition is made for real: a server killed under concurrent commits, its binary logs removed (a copy has
none), until its start refuses; then the pass, then an ordinary start."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest

from migrate.adapters.executor import LocalExecutor
from migrate.capabilities.seed.physical import roll_back_prepared
from migrate.errors import SandboxError
from migrate.sandbox import procs
from migrate.sandbox.mariadb import MariaDBServer

ATTEMPTS = 20


def crash_under_commits(server: MariaDBServer) -> None:
    stop = threading.Event()

    def writer() -> None:
        try:
            with server.root() as r:
                while not stop.is_set():
                    r.run("INSERT INTO d.t (v) VALUES (1)")
        except Exception:  # noqa: BLE001 - the server is killed under it
            pass

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    os.kill(procs.read_pid(server.pid_file), signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(10)
    procs.wait_until(lambda: not procs.alive(procs.read_pid(server.pid_file)), timeout=10, what="the killed server")


def test_prepared_transactions_of_a_copy_are_rolled_back_so_it_starts():
    base = Path(tempfile.mkdtemp(prefix="mig-xa-", dir="/tmp"))
    server = MariaDBServer("prepared", base / "server", procs.free_port(), server_id=9, options={"sync-binlog": "0"})
    try:
        server.init()
        with server.root() as r:
            r.run("CREATE DATABASE d")
            r.run("CREATE TABLE d.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB")
        for _ in range(ATTEMPTS):
            crash_under_commits(server)
            for binlog in server.datadir.glob("binlog.*"):
                binlog.unlink()
            try:
                server.start()
            except SandboxError:
                break  # refused: prepared transactions and no binary log, as in a copy
        else:
            pytest.skip(f"no kill out of {ATTEMPTS} left a transaction prepared")
        assert "prepared transactions!" in server.log_file.read_text()
        workdir = base / "backup"
        workdir.mkdir()
        (workdir / "backup-my.cnf").write_text("[mysqld]\ninnodb_page_size=16384\n")
        said = roll_back_prepared(LocalExecutor(label="this host"), str(server.datadir), str(workdir), "root")
        assert said.endswith("prepared transaction(s) rolled back") and not said.startswith("0 ")
        assert not list(server.datadir.glob("migrate-recover.*"))
        server.start()
        with server.root() as r:
            assert r.value("SELECT COUNT(*) FROM d.t") > 0
    finally:
        server.destroy()
        shutil.rmtree(base, ignore_errors=True)
