"""Schema, table, column, routine and account names with backticks, quotes, spaces, dots and non-ASCII
characters carried intact end to end: plan names what mydumper cannot carry and `start` seeds with mysqldump
instead (mydumper 0.10 crashes on a backtick, exits 1 without a word on a non-ASCII schema, and myloader loads
a schema with a dot in its name as nothing, exiting 0); replication and the cutover carry every row."""

from __future__ import annotations

import json

from migrate.adapters.db import quote_ident
from migrate.sandbox import sandbox as sandbox_mod
from tests.helpers import run_migrate, wait_for, write_playbook

SCHEMAS = ["we`ird", "münchen", "a.b", "q'uote d\"q sp ace"]
TABLE = "tä`b.le x"  # a backtick, a dot, a space and a non-ASCII letter
ACCOUNT = "rép`orter"


def _fingerprint(session) -> dict[str, tuple]:
    out = {}
    for schema in SCHEMAS:
        table = f"{quote_ident(schema)}.{quote_ident(TABLE)}"
        out[schema] = (session.value(f"SELECT COUNT(*) FROM {table}"),
                       session.value(f"SELECT GROUP_CONCAT(`é col` ORDER BY id SEPARATOR '|') FROM {table}"))
    return out


def test_unusual_names_are_seeded_replicated_and_cut_over_intact(tmp_path):
    with sandbox_mod.temporary(200) as sb:
        with sb.source.root() as root:
            for schema in SCHEMAS:
                db, table = quote_ident(schema), f"{quote_ident(schema)}.{quote_ident(TABLE)}"
                root.run(f"CREATE DATABASE {db}")
                root.run(f"CREATE TABLE {table} (id INT PRIMARY KEY AUTO_INCREMENT, `é col` VARCHAR(40))")
                root.run(f"INSERT INTO {table} (`é col`) VALUES ('ünï`cødé'), ('q''uote')")
                root.run(f"CREATE VIEW {db}.{quote_ident('v ü')} AS SELECT COUNT(*) AS n FROM {table}")
            root.run(f"CREATE USER {quote_ident(ACCOUNT)}@'%%' IDENTIFIED BY %s", ("reporter-pw-1",))
            root.run(f"GRANT SELECT ON {quote_ident(SCHEMAS[0])}.* TO {quote_ident(ACCOUNT)}@'%'")
        playbook = write_playbook(sb.playbook_path, tmp_path / "pb.yml", estimates={"binlog_sample_s": 0.2})

        plan = run_migrate("plan", "-p", str(playbook), "--json")
        doc = json.loads(plan.stdout)
        names = next(c for c in doc["checks"] if c["id"] == "seed.names")
        assert names["status"] == "pass" and "the seed uses mysqldump" in names["evidence"], names
        for why in ("'we`ird' (a backtick)", "'münchen' (not ASCII)", "'a.b' (a dot"):
            assert why in names["evidence"], (why, names["evidence"])
        assert doc["plan"]["seed"]["tool"] == "mysqldump"
        explicit = write_playbook(sb.playbook_path, tmp_path / "pb-mydumper.yml", seed={"tool": "mydumper"},
                                  estimates={"binlog_sample_s": 0.2})
        refused = json.loads(run_migrate("plan", "-p", str(explicit), "--json").stdout)
        assert "seed.names" in refused["failed"]

        started = run_migrate("start", "-p", str(playbook), "--json", timeout=600)
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        seed = next(s for s in json.loads(started.stdout)["steps"] if s["name"] == "seed")
        assert "with mysqldump" in seed["message"], seed
        with sb.source.root() as root:  # a write after the seed, carried by replication
            for schema in SCHEMAS:
                root.run(f"INSERT INTO {quote_ident(schema)}.{quote_ident(TABLE)} (`é col`) VALUES ('après')")
            expected = _fingerprint(root)
        with sb.target.root() as t:
            wait_for(lambda: _fingerprint(t) == expected, 30, "the target to hold every row")
            assert t.value("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (ACCOUNT,)) == 1
            assert any(quote_ident(SCHEMAS[0]).replace("_", "\\_") in next(iter(r.values())) or
                       quote_ident(SCHEMAS[0]) in next(iter(r.values()))
                       for r in t.run(f"SHOW GRANTS FOR {quote_ident(ACCOUNT)}@'%'"))

        cut = run_migrate("cutover", "-p", str(playbook), "--yes", "--json", timeout=300)
        assert cut.returncode == 0, cut.stdout[-3000:] + cut.stderr[-3000:]
        with sb.target.root() as t:
            assert _fingerprint(t) == expected
