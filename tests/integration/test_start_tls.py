"""source.tls.mode: required on real servers: migrate's sessions, the dump and the replication stream all
use TLS verified against the CA file; a replication account that REQUIRES SSL proves the stream does."""

from __future__ import annotations

import json

from migrate.capabilities import replication
from migrate.sandbox import sandbox as sandbox_mod
from tests.helpers import run_migrate, write_playbook


def test_start_with_tls_required_replicates_over_tls():
    with sandbox_mod.temporary(500) as sb:
        with sb.source.root() as root:
            root.run("CREATE USER 'repl'@'%%' IDENTIFIED BY %s REQUIRE SSL", (sb.secret("repl"),))
        playbook = write_playbook(sb.playbook_path, sb.dir / "pb-tls.yml",
                                  source={"tls": {"mode": "required", "ca_file": str(sb.tls_dir / "ca.pem")}})
        result = run_migrate("start", "-p", str(playbook), "--json", timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        nothing_to_do = ("events_disabled", "heartbeat_event")  # no event in the sample data; heartbeat.event off
        assert all(s["status"] == "done" for s in json.loads(result.stdout)["steps"] if s["name"] not in nothing_to_do)
        with sb.target.root() as t:
            row = t.one(t.dialect.replica_status())
            assert row["Master_SSL_Allowed"] == "Yes" and row["Master_SSL_CA_File"] == str(sb.tls_dir / "ca.pem")
            assert replication.read_status(t).healthy
        with sb.source.root() as s:
            tls_sessions = s.value("SELECT COUNT(*) FROM information_schema.processlist WHERE user = 'repl' "
                                   "AND command LIKE 'Binlog Dump%%'")
        assert tls_sessions == 1  # the only way in for an account that REQUIRES SSL
