"""Who may take the cutover's write block (revoke_and_kill): checked by the rehearsal, which cannot take the
real one, on the source account's global privileges."""

from __future__ import annotations

from migrate.capabilities.write_block.revoke_and_kill import can_revoke_and_kill


def test_who_may_revoke_and_kill_for_the_real_block():
    assert can_revoke_and_kill({"SELECT", "CREATE USER", "GRANT OPTION"}, rds=True)  # the RDS master user
    assert not can_revoke_and_kill({"SELECT", "CREATE USER"}, rds=True)
    assert can_revoke_and_kill({"ALL PRIVILEGES", "GRANT OPTION"}, rds=False)
    assert can_revoke_and_kill({"CONNECTION ADMIN", "GRANT OPTION"}, rds=False)
    assert not can_revoke_and_kill({"CREATE USER", "GRANT OPTION"}, rds=False)


def test_who_may_set_read_only_and_who_writes_through_it_per_server():
    """MariaDB 10.11 took READ_ONLY ADMIN out of SUPER: before it SUPER both sets read_only and writes through it.
    MySQL's blocker sets super_read_only too (from 5.7), which stops SUPER accounts as well."""
    from tests.unit.test_dialect import dialect

    assert dialect("mariadb1011").read_only_setters() == {"READ_ONLY ADMIN", "ALL PRIVILEGES"}
    assert dialect("mariadb1011").read_only_bypassers() == {"READ_ONLY ADMIN", "ALL PRIVILEGES"}
    assert "SUPER" in dialect("mariadb106").read_only_bypassers()
    assert "SUPER" not in dialect("mariadb114").read_only_setters()
    for key in ("mysql57", "mysql8036", "mysql84"):
        assert dialect(key).read_only_setters() == {"SUPER", "SYSTEM_VARIABLES_ADMIN", "ALL PRIVILEGES"}
        assert dialect(key).read_only_bypassers() == frozenset()
        assert [s.sql for s in dialect(key).set_read_only(True)] == ["SET GLOBAL read_only = ON",
                                                                      "SET GLOBAL super_read_only = ON"]
