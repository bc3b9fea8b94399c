"""Seeding, under writes that run for the whole seed, a schema with everything that breaks naive
migrations; then, writes stopped and the replica caught up, every table, code object, account and grant
matches between source and target. Once per logical tool."""

from __future__ import annotations

import json

import pytest

from migrate.capabilities import replication
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.sample_data import OWNER_PRIVILEGES
from migrate.workflows import demo
from tests import hard_schema
from tests.helpers import endpoint_as, fingerprint, open_session, write_playbook

OWNER, WRITER = "hard_owner", "hard_app"


@pytest.fixture(params=[("mydumper", "lock"), ("mysqldump", "lock"), ("mydumper", "replica"),
                        ("mysqldump", "replica")], ids=lambda p: "-".join(p))
def hard_sandbox(request):
    with sandbox_mod.temporary(1000) as sb:
        with sb.master() as master:
            master.run(hard_schema.DDL[0])
            for user in (OWNER, WRITER):
                master.run(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (f"{user}-pw-1",))
            master.run(f"GRANT {OWNER_PRIVILEGES} ON {hard_schema.SCHEMA}.* TO '{OWNER}'@'%'")
            master.run(f"GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON {hard_schema.SCHEMA}.* TO '{WRITER}'@'%'")
        with open_session(endpoint_as(sb.ports["source"], OWNER, f"{OWNER}-pw-1")) as owner:
            hard_schema.create(owner)
        tool, consistency = request.param
        playbook = write_playbook(sb.playbook_path, sb.dir / "pb.yml", seed={"tool": tool, "consistency": consistency},
                                  cutover={"app_users": ["app_rw", WRITER]})
        yield sb, playbook, tool, consistency


def start_under_writes(sb, playbook):
    return hard_schema.start_under_writes(
        playbook, lambda: endpoint_as(sb.ports["source"], WRITER, f"{WRITER}-pw-1"), rate=200)


def test_a_hard_schema_seeded_under_writes_matches_the_source(hard_sandbox):
    sb, playbook, tool, consistency = hard_sandbox
    if tool == "mysqldump" and consistency == "lock":
        # RDS refuses the global lock mysqldump needs to hold MyISAM still: refused, loudly, before any copy
        refused, _ = start_under_writes(sb, playbook)
        assert refused.returncode == 4 and "hard.legacy (MyISAM)" in refused.stdout
        assert "install mydumper" in refused.stdout
        with sb.source.root() as root:
            root.run("ALTER TABLE hard.legacy ENGINE=InnoDB")
    result, writer = start_under_writes(sb, playbook)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seeded = next(s for s in json.loads(result.stdout)["steps"] if s["name"] == "seed")["message"]
    assert f"with {tool}" in seeded and f"consistency {consistency}" in seeded
    assert writer.done > 100, writer.errors[:5]
    m = Migration(load(playbook))
    demo.wait_caught_up(m, 180)

    with sb.source.root() as s, sb.target.root() as t:
        status = replication.read_status(t)
        assert status.healthy, status.last_error
        for table, key in hard_schema.TABLES.items():
            assert fingerprint(s, "hard", table, key, None) == fingerprint(t, "hard", table, key, None), table
        for query in _CODE_QUERIES:
            assert _rows(s, query) == _rows(t, query), query
        # disabled on the replica (a dump of an RDS read replica carries them as SLAVESIDE_DISABLED)
        assert _events(s) == {("tick", "ENABLED")}
        assert _events(t) in ({("tick", "DISABLED")}, {("tick", "SLAVESIDE_DISABLED")})
        for user in (OWNER, WRITER, "app_rw", "shop_owner"):
            assert _grants(s, user) == _grants(t, user), user


_CODE_QUERIES = [
    "SELECT routine_name, routine_type, routine_definition, definer, security_type FROM information_schema.routines "
    "WHERE routine_schema = 'hard' ORDER BY 1",
    "SELECT trigger_name, event_object_table, action_statement, definer FROM information_schema.triggers "
    "WHERE trigger_schema = 'hard' ORDER BY 1",
    "SELECT table_name, view_definition, definer, security_type FROM information_schema.views "
    "WHERE table_schema = 'hard' ORDER BY 1",
    "SELECT event_name, event_definition, definer, interval_value, interval_field FROM information_schema.events "
    "WHERE event_schema = 'hard' ORDER BY 1",
    "SELECT table_name, engine, table_collation, create_options FROM information_schema.tables "
    "WHERE table_schema = 'hard' ORDER BY 1",
    "SELECT table_name, column_name, column_type, generation_expression, collation_name "
    "FROM information_schema.columns WHERE table_schema = 'hard' ORDER BY 1, 2",
    "SELECT constraint_name, table_name, referenced_table_name FROM information_schema.referential_constraints "
    "WHERE constraint_schema = 'hard' ORDER BY 1",
    "SELECT table_name, partition_name, partition_description FROM information_schema.partitions "
    "WHERE table_schema = 'hard' AND partition_name IS NOT NULL ORDER BY 1, 2",
]


def _rows(session, query):
    return [tuple(r.values()) for r in session.run(query)]


def _events(session):
    return {(r["n"], r["s"]) for r in session.run(
        "SELECT event_name AS n, status AS s FROM information_schema.events WHERE event_schema = 'hard'")}


def _grants(session, user):
    return sorted(next(iter(r.values())) for r in session.run(f"SHOW GRANTS FOR '{user}'@'%'"))
