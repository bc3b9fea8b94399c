"""The cutover with the `command` repoint: the application here finds its database in a file that the
repoint command rewrites (as a config-management push would), and the probe follows the repoint."""

from __future__ import annotations

import json

from migrate.capabilities import replication
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sample_data
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.workload import AppWorkload
from migrate.workflows import start
from tests.helpers import endpoint_as, fingerprint, run_migrate, write_playbook


def test_cutover_with_a_repoint_command_under_write_load_loses_nothing(tmp_path):
    with sandbox_mod.temporary(2000) as sb:
        config = tmp_path / "app-db.conf"  # what the application reads on every (re)connect
        config.write_text(f"127.0.0.1 {sb.ports['source']}\n")
        playbook = write_playbook(
            sb.playbook_path, tmp_path / "pb.yml",
            cutover={"repoint": {"method": "command",
                                 "command": {"run": f"sh -c 'echo \"$MIGRATE_TARGET_HOST $MIGRATE_TARGET_PORT\" "
                                                    f"> {config}.new && mv {config}.new {config}'"}}},
            probe={"host": None, "port": None})
        start.run(Migration(load(playbook)))

        def app_endpoint():
            host, port = config.read_text().split()
            return endpoint_as(int(port), sample_data.APP_USER, sb.secret("app"))

        load_ = AppWorkload(app_endpoint, rate=200, threads=4).start()
        try:
            result = run_migrate("cutover", "-p", str(playbook), "--yes", "--json")
        finally:
            writes = load_.stop()
        assert result.returncode == 0, result.stdout + result.stderr[-3000:]
        report = json.loads(result.stdout)["report"]
        assert report["write_downtime"]["lost_acknowledged_writes"] == 0
        assert report["facts"]["probe_endpoint"].endswith("(follows the repoint)")
        assert config.read_text().split() == ["127.0.0.1", str(sb.ports["target"])]

        with sb.source.root() as s, sb.target.root() as t:
            ids = ", ".join(str(i) for i in writes.acked_order_ids)
            present = t.value(f"SELECT COUNT(*) FROM shop.orders WHERE id IN ({ids})")
            assert writes.acked_order_ids and present == len(writes.acked_order_ids)
            for table, key in (("customers", "id"), ("orders", "id"), ("order_lines", "order_id")):
                upto = s.value(f"SELECT MAX(`{key}`) FROM shop.`{table}`")
                assert fingerprint(s, "shop", table, key, upto) == fingerprint(t, "shop", table, key, upto), table
            assert not replication.read_status(t).configured
