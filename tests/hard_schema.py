"""A schema with what breaks naive migrations, and a writer that keeps changing every table of it.

Generated columns, partitions, a table without a primary key, foreign keys, utf8mb4 text with 4-byte
characters, BLOBs, a reserved word as a table name, MyISAM, triggers, routines, events and views.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable

from migrate.adapters.db import Endpoint, Session, connect

SCHEMA = "hard"
TABLES = {  # table -> a column that orders/bounds it (for comparisons)
    "parent": "id", "child": "id", "gen": "id", "parts": "id", "nopk": "k", "blobs": "id", "order": "id",
    "legacy": "id", "audit": "id",
}

DDL = [
    f"CREATE DATABASE {SCHEMA} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    f"""CREATE TABLE {SCHEMA}.parent (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL) ENGINE=InnoDB""",
    f"""CREATE TABLE {SCHEMA}.child (id INT PRIMARY KEY AUTO_INCREMENT, parent_id INT NOT NULL, note TEXT,
        CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES {SCHEMA}.parent (id) ON DELETE CASCADE)
        ENGINE=InnoDB""",
    f"""CREATE TABLE {SCHEMA}.gen (id INT PRIMARY KEY AUTO_INCREMENT, a INT NOT NULL, b INT NOT NULL,
        total INT AS (a * b) STORED, label VARCHAR(40) AS (CONCAT('n', a)) VIRTUAL, KEY ix_total (total))
        ENGINE=InnoDB""",
    f"""CREATE TABLE {SCHEMA}.parts (id INT NOT NULL, created DATE NOT NULL, v INT, PRIMARY KEY (id, created))
        ENGINE=InnoDB PARTITION BY RANGE (YEAR(created)) (PARTITION p2024 VALUES LESS THAN (2025),
        PARTITION p2025 VALUES LESS THAN (2026), PARTITION pmax VALUES LESS THAN MAXVALUE)""",
    f"""CREATE TABLE {SCHEMA}.nopk (k INT NOT NULL, v VARCHAR(50), KEY ix_k (k)) ENGINE=InnoDB""",
    f"""CREATE TABLE {SCHEMA}.blobs (id INT PRIMARY KEY AUTO_INCREMENT, data LONGBLOB, txt MEDIUMTEXT
        CHARACTER SET utf8mb4) ENGINE=InnoDB""",
    f"""CREATE TABLE {SCHEMA}.`order` (id INT PRIMARY KEY AUTO_INCREMENT, `select` VARCHAR(20), `from` INT)
        ENGINE=InnoDB""",
    f"""CREATE TABLE {SCHEMA}.legacy (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(50)) ENGINE=MyISAM""",
    f"""CREATE TABLE {SCHEMA}.audit (id INT PRIMARY KEY AUTO_INCREMENT, what VARCHAR(100), at DATETIME(6))
        ENGINE=InnoDB""",
]

CODE = [
    f"""CREATE TRIGGER {SCHEMA}.child_audit AFTER INSERT ON {SCHEMA}.child FOR EACH ROW
        INSERT INTO {SCHEMA}.audit (what, at) VALUES (CONCAT('child ', NEW.id), NOW(6))""",
    f"""CREATE PROCEDURE {SCHEMA}.add_child(IN p INT, IN n TEXT)
        MODIFIES SQL DATA INSERT INTO {SCHEMA}.child (parent_id, note) VALUES (p, n)""",
    f"""CREATE FUNCTION {SCHEMA}.twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2""",
    f"""CREATE VIEW {SCHEMA}.parent_counts AS SELECT p.id, p.name, COUNT(c.id) AS children
        FROM {SCHEMA}.parent p LEFT JOIN {SCHEMA}.child c ON c.parent_id = p.id GROUP BY p.id, p.name""",
    f"""CREATE EVENT {SCHEMA}.tick ON SCHEDULE EVERY 1 HOUR DO
        INSERT INTO {SCHEMA}.audit (what, at) VALUES ('tick', NOW(6))""",
]

EMOJI = "migración ✓ 🐬🚀 𝄞 日本語"


def create(owner: Session, rows: int = 300) -> None:
    """As an account with rights on the schema only (it becomes the DEFINER of the code objects)."""
    for ddl in DDL[1:] + CODE:
        owner.run(ddl)
    rnd = random.Random(7)
    owner.run_many(f"INSERT INTO {SCHEMA}.parent (id, name) VALUES (%s, %s)",
                   [(i, f"parent {i} {EMOJI}") for i in range(1, rows + 1)])
    owner.run_many(f"INSERT INTO {SCHEMA}.child (parent_id, note) VALUES (%s, %s)",
                   [(rnd.randint(1, rows), f"note {i}") for i in range(rows)])
    owner.run_many(f"INSERT INTO {SCHEMA}.gen (a, b) VALUES (%s, %s)", [(i, i % 7) for i in range(rows)])
    owner.run_many(f"INSERT INTO {SCHEMA}.parts (id, created, v) VALUES (%s, %s, %s)",
                   [(i, f"{2024 + i % 3}-0{1 + i % 9}-1{i % 9}", i) for i in range(rows)])
    owner.run_many(f"INSERT INTO {SCHEMA}.nopk (k, v) VALUES (%s, %s)", [(i % 50, f"v{i}") for i in range(rows)])
    for _ in range(10):  # enough bytes that dumping them takes a while: writes land meanwhile
        owner.run_many(f"INSERT INTO {SCHEMA}.blobs (data, txt) VALUES (%s, %s)",
                       [(os.urandom(rnd.randint(0, 8000)), EMOJI * rnd.randint(1, 30)) for _ in range(200)])
    owner.run_many(f"INSERT INTO {SCHEMA}.`order` (`select`, `from`) VALUES (%s, %s)",
                   [(f"s{i}", i) for i in range(rows)])
    owner.run_many(f"INSERT INTO {SCHEMA}.legacy (v) VALUES (%s)", [(f"old {i}",) for i in range(rows)])


class HardWriter:
    """Inserts, updates and deletes across every table, one statement at a time, until stopped."""

    def __init__(self, endpoint: Callable[[], Endpoint], rate: float = 100):
        self.endpoint, self.interval = endpoint, 1.0 / rate
        self._stop = threading.Event()
        self.done = 0
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> HardWriter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        rnd = random.Random(11)
        session = None
        i = 100_000
        while not self._stop.is_set():
            i += 1
            try:
                session = session or connect(self.endpoint(), attempts=1, connect_timeout=2, read_timeout=10)
                stmt = rnd.choice(_STATEMENTS)
                session.run(stmt[0], stmt[1](i, rnd))
                self.done += 1
            except Exception as exc:  # noqa: BLE001 - recorded; a test decides whether it matters
                self.errors.append(str(exc)[:200])
                if session is not None:
                    session.close()
                session = None
            time.sleep(self.interval)
        if session is not None:
            session.close()


def start_under_writes(playbook, endpoint: Callable[[], Endpoint], rate: float):
    """`migrate start` while a HardWriter runs for the whole of it; (result, writer)."""
    from tests.helpers import run_migrate

    writer = HardWriter(endpoint, rate=rate).start()
    try:
        time.sleep(0.3)
        result = run_migrate("start", "-p", str(playbook), "--json", timeout=600)
        time.sleep(0.3)
    finally:
        writer.stop()
    return result, writer


_STATEMENTS = [
    (f"INSERT INTO {SCHEMA}.parent (id, name) VALUES (%s, %s)", lambda i, r: (i, f"p{i} {EMOJI}")),
    (f"CALL {SCHEMA}.add_child(%s, %s)", lambda i, r: (r.randint(1, 300), f"c{i} {EMOJI}")),
    (f"UPDATE {SCHEMA}.gen SET a = a + 1 WHERE id = %s", lambda i, r: (r.randint(1, 300),)),
    (f"INSERT INTO {SCHEMA}.gen (a, b) VALUES (%s, %s)", lambda i, r: (i % 1000, i % 11)),
    (f"INSERT INTO {SCHEMA}.parts (id, created, v) VALUES (%s, %s, %s)", lambda i, r: (i, "2025-06-01", i)),
    (f"DELETE FROM {SCHEMA}.parts WHERE id = %s", lambda i, r: (r.randint(1, 300),)),
    (f"INSERT INTO {SCHEMA}.nopk (k, v) VALUES (%s, %s)", lambda i, r: (i % 50, f"v{i}")),
    (f"UPDATE {SCHEMA}.nopk SET v = CONCAT(v, '+') WHERE k = %s LIMIT 1", lambda i, r: (r.randint(0, 49),)),
    (f"INSERT INTO {SCHEMA}.blobs (data, txt) VALUES (%s, %s)", lambda i, r: (os.urandom(r.randint(0, 2000)), EMOJI)),
    (f"UPDATE {SCHEMA}.`order` SET `from` = `from` + 1 WHERE id = %s", lambda i, r: (r.randint(1, 300),)),
    *[(f"INSERT INTO {SCHEMA}.legacy (v) VALUES (%s)", lambda i, r: (f"new {i}",))] * 4,
    (f"UPDATE {SCHEMA}.legacy SET v = CONCAT(v, '!') WHERE id = %s", lambda i, r: (r.randint(1, 300),)),
    (f"DELETE FROM {SCHEMA}.parent WHERE id = %s", lambda i, r: (r.randint(1, 300),)),
]
