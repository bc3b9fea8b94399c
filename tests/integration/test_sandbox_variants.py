"""The sandbox's variants work as written: `--source self-managed` gives an ordinary MariaDB (no RDS
emulation) administered by an account with every privilege, seeded physically over SSH, cut over with read_only."""

from __future__ import annotations

import json

from migrate.capabilities import replication
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.sandbox import Options
from tests.helpers import run_migrate


def test_self_managed_source_plans_go_starts_a_physical_replica_and_cuts_over_with_read_only_through_the_cli():
    with sandbox_mod.temporary(rows=2000, options=Options(source="self-managed", write_block="read_only")) as sb:
        playbook = str(sb.playbook_path)
        plan = run_migrate("plan", "-p", playbook, "--json")
        assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-2000:]
        assert json.loads(plan.stdout)["verdict"] == "go"
        start = run_migrate("start", "-p", playbook, "--json")
        assert start.returncode == 0, start.stdout[-3000:] + start.stderr[-2000:]
        seeded = next(s for s in json.loads(start.stdout)["steps"] if s["name"] == "seed")["message"]
        assert "physically with mariadb-backup" in seeded
        with sb.source.root() as s, sb.target.root() as t:
            assert s.value("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = 'mysql' "
                           "AND routine_name LIKE 'rds\\_%%'") == 0
            assert "ALL PRIVILEGES" in s.one("SHOW GRANTS FOR 'admin'@'%'")["Grants for admin@%"]
            status = replication.read_status(t)
            assert status.healthy, status
            assert t.one(t.dialect.replica_status())["Master_Port"] == sb.ports["source"]
            assert t.value("SELECT COUNT(*) FROM shop.orders") >= 2000 and t.variable("read_only") == 1
        shown = run_migrate("status", "-p", playbook, "--json")
        assert shown.returncode == 0, shown.stdout[-2000:]
        cutover = run_migrate("cutover", "-p", playbook, "--yes", "--json")
        assert cutover.returncode == 0, cutover.stdout[-3000:] + cutover.stderr[-2000:]
        with sb.source.root() as s:
            assert s.variable("read_only") == 1  # blocked by read_only, now a replica of the new primary
