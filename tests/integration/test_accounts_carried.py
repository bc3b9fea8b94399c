"""Every account of the source reaches the target (seed.accounts: all): a reporting user with column, table and
routine grants and resource limits, an account that requires TLS, a role granted by default, a proxy grant;
the service's and migrate's own accounts and seed.skip_accounts stay behind, and `plan` lists both."""

from __future__ import annotations

from migrate.capabilities import accounts, grants
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sandbox as sandbox_mod
from migrate.steps import start as start_steps
from migrate.workflows import plan, start
from tests.helpers import endpoint_as, open_session, write_playbook

ACCOUNTS = [
    "CREATE USER 'reporting'@'10.%' IDENTIFIED BY 'reporting-pw-1' WITH MAX_QUERIES_PER_HOUR 500 "
    "MAX_USER_CONNECTIONS 3",
    "GRANT SELECT (id, status) ON shop.orders TO 'reporting'@'10.%'",
    "GRANT SELECT ON shop.customers TO 'reporting'@'10.%'",
    "GRANT EXECUTE ON PROCEDURE shop.place_order TO 'reporting'@'10.%'",
    "CREATE USER 'reporting'@'127.0.0.1' IDENTIFIED BY 'reporting-pw-2'",
    "GRANT SELECT ON shop.* TO 'reporting'@'127.0.0.1'",
    "CREATE USER 'billing'@'%' IDENTIFIED BY 'billing-pw-1' REQUIRE SSL",
    "CREATE ROLE 'auditor'",
    "GRANT SELECT ON shop.orders TO 'auditor'",
    "GRANT 'auditor' TO 'billing'@'%'",
    "SET DEFAULT ROLE 'auditor' FOR 'billing'@'%'",
    "GRANT PROXY ON 'reporting'@'127.0.0.1' TO 'billing'@'%'",
    "CREATE USER 'legacy_etl'@'%' IDENTIFIED BY 'legacy-pw-1'",
]
CARRIED = ["'reporting'@'10.%'", "'reporting'@'127.0.0.1'", "'billing'@'%'", "'auditor'@''"]


def _grants(s, account: str) -> set[str]:
    return {grants.comparable(next(iter(r.values()))) for r in s.run(f"SHOW GRANTS FOR {account}")}


def test_every_account_with_its_grants_limits_tls_and_roles_reaches_the_target(tmp_path):
    with sandbox_mod.temporary(300) as sb:
        with sb.source.root() as root:
            for stmt in ACCOUNTS:
                root.run(stmt)
        playbook = write_playbook(sb.playbook_path, tmp_path / "pb.yml", seed={"skip_accounts": ["legacy_etl"]})
        m = Migration(load(playbook))

        planned = {c["id"]: c for c in plan.run(m)["checks"]}["source.accounts"]["evidence"]
        assert all(a in planned for a in CARRIED), planned
        assert "'legacy_etl'@'%' (listed in seed.skip_accounts)" in planned
        assert "'rdsadmin'@'localhost' (the managed service" in planned

        result = start.run(Migration(load(playbook)))
        assert result.status == "done"
        with sb.source.root() as src, sb.target.root() as tgt:
            for account in ("'reporting'@'10.%'", "'reporting'@'127.0.0.1'", "'billing'@'%'"):
                assert src.one(f"SHOW CREATE USER {account}") == tgt.one(f"SHOW CREATE USER {account}"), account
                assert _grants(src, account) == _grants(tgt, account), account
            assert _grants(src, "'auditor'") == _grants(tgt, "'auditor'")
            assert "REQUIRE SSL" in next(iter(tgt.one("SHOW CREATE USER 'billing'@'%'").values()))
            assert tgt.value("SELECT COUNT(*) FROM mysql.user WHERE User = 'legacy_etl'") == 0
            assert tgt.value("SELECT COUNT(*) FROM mysql.user WHERE User IN ('rdsadmin', 'rdsrepladmin')") == 0
        # the reporting user logs in on the target with its own password, and reads what it may
        with open_session(endpoint_as(sb.ports["target"], "reporting", "reporting-pw-2")) as rep:
            assert rep.value("SELECT COUNT(*) FROM shop.orders") >= 0

        # done() compares the servers: in step now, and a grant taken away on the target is seen
        with sb.source.root() as src, sb.target.root() as tgt:
            chosen = start_steps.selection(src, m, ["shop", "_migrate"])
            assert accounts.differences(src, tgt, chosen) == []
            tgt.run("SET sql_log_bin = 0")
            tgt.run("REVOKE SELECT ON shop.customers FROM 'reporting'@'10.%'")
            assert accounts.differences(src, tgt, chosen) == ["'reporting'@'10.%' grants differ"]
