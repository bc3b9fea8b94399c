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
