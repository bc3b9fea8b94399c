"""The physical seed on real servers: the sandbox's source treated as a self-managed server reached over
SSH, mariadb-backup streamed to the target host (which pulls it over SSH), prepared, moved into the
target's datadir, the server restarted, replication from the backup's coordinates — under writes to a
schema with everything that breaks naive migrations, MyISAM included. And the refusal for RDS."""

from __future__ import annotations

import json
import sys

from migrate.capabilities import replication
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.sample_data import OWNER_PRIVILEGES
from migrate.workflows import demo
from tests import hard_schema
from tests.helpers import endpoint_as, fingerprint, open_session, run_migrate, write_playbook

DBA_PW = "dba-physical-pw-1"


def test_physical_seed_from_rds_is_refused_with_the_reason(sandbox, tmp_path):
    playbook = write_playbook(sandbox.playbook_path, tmp_path / "pb.yml", name="physical-rds",
                              seed={"method": "physical"})
    result = run_migrate("start", "-p", str(playbook))
    assert result.returncode == 1 and "no physical copy can be taken out of RDS" in result.stdout
    assert "seed.method: dump" in result.stdout


def test_physical_seed_of_a_self_managed_source_under_writes_gives_a_matching_replica():
    with sandbox_mod.temporary(3000) as sb:
        with sb.source.root() as root:
            # an administrator of the self-managed source; and the target's account, which the clone carries
            root.run("CREATE USER 'dba'@'127.0.0.1' IDENTIFIED BY %s", (DBA_PW,))
            root.run("GRANT ALL PRIVILEGES ON *.* TO 'dba'@'127.0.0.1' WITH GRANT OPTION")
            root.run("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY %s", (sb.secret("target"),))
            root.run("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
            root.run(hard_schema.DDL[0])
            root.run("CREATE USER 'hard_owner'@'%%' IDENTIFIED BY %s", ("hard-owner-pw-1",))
            root.run(f"GRANT {OWNER_PRIVILEGES} ON hard.* TO 'hard_owner'@'%'")
        with open_session(endpoint_as(sb.ports["source"], "hard_owner", "hard-owner-pw-1")) as owner:
            hard_schema.create(owner)
        (sb.dir / "dba.pw").write_text(DBA_PW)
        (sb.dir / "dba.pw").chmod(0o600)
        ssh = {"host": "127.0.0.1", "port": sb.ssh.port, "user": sb.ssh.user, "key_file": str(sb.ssh.client_key),
               "known_hosts": str(sb.ssh.known_hosts)}
        control = f"{sys.executable} -m migrate sandbox server {{}} --dir {sb.dir} --name target"
        playbook = write_playbook(
            sb.playbook_path, sb.dir / "pb-physical.yml", name="physical",
            source={"kind": "mysql", "host": "127.0.0.1", "port": sb.ports["source"], "user": "dba",
                    "password_file": str(sb.dir / "dba.pw"), "ssh": ssh, "datadir": str(sb.source.datadir),
                    "rds_instance_id": None},
            target={"service": {"stop": control.format("stop"), "start": control.format("start")}},
            seed={"method": "physical"}, cutover={"app_users": ["app_rw"]})
        result, writer = hard_schema.start_under_writes(
            playbook, lambda: endpoint_as(sb.ports["source"], "hard_owner", "hard-owner-pw-1"), rate=150)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        seeded = next(s for s in json.loads(result.stdout)["steps"] if s["name"] == "seed")["message"]
        assert "physically with mariadb-backup" in seeded and "previous datadir is kept" in seeded
        assert writer.done > 50
        demo.wait_caught_up(Migration(load(playbook)), 60)
        target_as_dba = endpoint_as(sb.ports["target"], "dba", DBA_PW)
        with sb.source.root() as s, open_session(target_as_dba) as t:
            assert replication.read_status(t).healthy
            assert t.variable("server_id") == 2 and t.variable("read_only") == 1
            for table, key in hard_schema.TABLES.items():
                assert fingerprint(s, "hard", table, key, None) == fingerprint(t, "hard", table, key, None), table
            for table, key in (("customers", "id"), ("orders", "id"), ("order_lines", "order_id")):
                assert fingerprint(s, "shop", table, key, None) == fingerprint(t, "shop", table, key, None), table
            assert t.value("SELECT status FROM information_schema.events WHERE event_name = 'tick'") == "DISABLED"
