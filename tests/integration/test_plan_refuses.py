"""`migrate plan` refuses on real servers what would fail later (issue 9): each test creates the condition
on the session's sandbox (its own accounts and schemas, globals put back) or on servers of its own, and reads
the check's verdict, evidence and fix."""

from __future__ import annotations

import uuid

import pytest

from migrate.adapters.db import DatabaseError
from migrate.sandbox.mariadb import MariaDBServer
from migrate.sandbox.procs import free_port
from tests.planning import check, run_plan


def _account(session, tmp_path, grants: list[str], *, require_ssl: bool = False) -> tuple[str, dict]:
    """A login of this test's own on `session`'s server: (user, the playbook's password_file setting)."""
    user, password = f"pl_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    session.run(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s" + (" REQUIRE SSL" if require_ssl else ""), (password,))
    for grant in grants:
        session.run(grant.format(user=f"'{user}'@'%'"))
    (tmp_path / f"{user}.pw").write_text(password)
    return user, {"user": user, "password_file": str(tmp_path / f"{user}.pw")}


def test_a_login_refused_for_lack_of_tls_is_named_and_what_needs_the_source_is_skipped(
        sandbox, tmp_path, source_root):
    user, login = _account(source_root, tmp_path, ["GRANT ALL PRIVILEGES ON *.* TO {user} WITH GRANT OPTION"],
                           require_ssl=True)
    (tmp_path / "wrong.pw").write_text("not-the-password")
    try:
        refused = run_plan(sandbox, tmp_path, source=login)  # the sandbox's playbook says tls.mode: disabled
        wrong = run_plan(sandbox, tmp_path, source={**login, "password_file": str(tmp_path / "wrong.pw")})
    finally:
        source_root.run(f"DROP USER '{user}'@'%'")
    c = check(refused, "source.connect")
    assert c["status"] == "fail" and "refused without TLS" in c["evidence"], c
    assert "tls.mode: required" in c["evidence"]
    assert "without TLS" not in check(wrong, "source.connect")["evidence"]  # a wrong password stays one
    assert refused["failed"] == ["source.connect"], refused["failed"]
    for needs_source in ("target.version", "target.settings", "target.collations", "network.clock_skew",
                         "cutover.app_accounts", "cutover.probe"):
        skipped = check(refused, needs_source)
        assert skipped["status"] == "skip" and "source could not be read" in skipped["evidence"], skipped


def test_an_unreachable_source_fails_once_and_skips_what_depends_on_it(sandbox, tmp_path):
    result = run_plan(sandbox, tmp_path, source={"port": free_port()})
    # the target host's own connection to the source is another path, measured from there: it fails too
    assert result["failed"] == ["source.connect", "network.target_to_source"], result["failed"]
    assert "(2003)" in check(result, "source.connect")["evidence"]
    assert check(result, "target.collations")["status"] == "skip"
    assert check(result, "target.read_only")["status"] == "pass"  # the target's own checks still run


def test_a_replication_password_longer_than_the_flavor_takes_fails(sandbox, tmp_path):
    (tmp_path / "long.pw").write_text("p" * 97)
    (tmp_path / "max.pw").write_text("p" * 96)
    too_long = check(run_plan(sandbox, tmp_path, replication={"password_file": str(tmp_path / "long.pw")}),
                     "replication.password")
    assert too_long["status"] == "fail" and "97 characters" in too_long["evidence"] and "at most 96" in \
        too_long["evidence"], too_long
    longest = check(run_plan(sandbox, tmp_path, replication={"password_file": str(tmp_path / "max.pw")}),
                    "replication.password")
    assert longest["status"] == "pass", longest


def test_the_limit_is_measured_the_server_refuses_one_character_more(target_root):
    """The figure the check uses is the server's own: CHANGE MASTER on a named connection of this test's own."""
    name = f"pwlimit_{uuid.uuid4().hex[:6]}"
    limit = target_root.dialect.replication_password_max
    try:
        target_root.run(f"CHANGE MASTER '{name}' TO MASTER_HOST='127.0.0.1', MASTER_USER='x', MASTER_PASSWORD=%s",
                        ("p" * limit,))
        with pytest.raises(DatabaseError, match="too long for MASTER_PASSWORD"):
            target_root.run(f"CHANGE MASTER '{name}' TO MASTER_PASSWORD=%s", ("p" * (limit + 1),))
    finally:
        target_root.run(f"RESET SLAVE '{name}' ALL")


def test_a_target_user_that_cannot_do_what_start_and_the_cutover_ask_fails(sandbox, tmp_path, target_root):
    user, login = _account(target_root, tmp_path, ["GRANT SELECT, INSERT, CREATE, DROP, SUPER ON *.* TO {user}"])
    try:
        result = run_plan(sandbox, tmp_path, target=login)
    finally:
        target_root.run(f"DROP USER '{user}'@'%'")
    assert "target.connect" not in result["by_id"], check(result, "target.connect")["evidence"]  # it reads the target
    c = check(result, "target.user_privileges")
    assert c["status"] == "fail", c
    for needed in ("CREATE USER", "GRANT OPTION", "READ_ONLY ADMIN", "CREATE VIEW", "REPLICATION SLAVE,",
                   "BINLOG MONITOR"):
        assert needed in c["evidence"], (needed, c["evidence"])
    assert "SET USER" not in c["evidence"] and "REPLICATION SLAVE ADMIN" not in c["evidence"]  # SUPER gives them
    assert "WITH GRANT OPTION" in c["fix"]


def test_privileges_that_come_from_default_roles_are_counted(sandbox, tmp_path, source_root, target_root, master):
    """The replication account and target.user hold what they need only through their default role."""
    role = f"role_{uuid.uuid4().hex[:6]}"
    master.run(f"CREATE ROLE {role}")
    master.run(f"GRANT REPLICATION SLAVE ON *.* TO {role}")
    repl, _ = _account(master, tmp_path, [f"GRANT {role} TO {{user}}", f"SET DEFAULT ROLE {role} FOR {{user}}"])
    target_root.run(f"CREATE ROLE {role}")
    target_root.run(f"GRANT ALL PRIVILEGES ON *.* TO {role} WITH GRANT OPTION")
    admin, login = _account(target_root, tmp_path, [f"GRANT {role} TO {{user}}", f"SET DEFAULT ROLE {role} FOR "
                                                    "{user}", "GRANT SELECT, SLAVE MONITOR ON *.* TO {user}"])
    try:
        result = run_plan(sandbox, tmp_path, replication={"user": repl}, target=login)
        target_root.run(f"SET DEFAULT ROLE NONE FOR '{admin}'@'%'")
        without = run_plan(sandbox, tmp_path, replication={"user": repl}, target=login)
    finally:
        master.run(f"DROP USER '{repl}'@'%'")
        master.run(f"DROP ROLE {role}")
        target_root.run(f"DROP USER '{admin}'@'%'")
        target_root.run(f"DROP ROLE {role}")
    c = check(result, "source.replication_account")
    assert c["status"] == "pass" and "exists with REPLICATION SLAVE" in c["evidence"], c
    assert "target.connect" not in result["by_id"], check(result, "target.connect")
    assert check(result, "target.user_privileges")["status"] == "pass", check(result, "target.user_privileges")
    assert check(without, "target.user_privileges")["status"] == "fail"  # the role not enabled at login: not counted


def test_a_target_that_forces_primary_keys_fails_for_the_source_tables_without_one(
        sandbox, tmp_path, source_root, schema, set_global):
    source_root.run("SET SESSION sql_log_bin = 0")  # the table stays off the shared target's replication
    source_root.run(f"CREATE DATABASE {schema}")
    source_root.run(f"CREATE TABLE {schema}.log_lines (at DATETIME, line TEXT)")
    source_root.run("SET SESSION sql_log_bin = 1")
    assert check(run_plan(sandbox, tmp_path), "target.primary_key_required")["status"] == "pass"
    set_global["target"]("innodb_force_primary_key", "ON")
    c = check(run_plan(sandbox, tmp_path), "target.primary_key_required")
    assert c["status"] == "fail" and f"{schema}.log_lines" in c["evidence"], c
    assert "innodb_force_primary_key=ON" in c["evidence"]


def test_a_definer_missing_on_the_target_is_named_with_whether_start_carries_it(
        sandbox, tmp_path, source_root, schema):
    user = f"rep_{uuid.uuid4().hex[:6]}"
    source_root.run("SET SESSION sql_log_bin = 0")  # on the source only: the target lacks the account
    source_root.run(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (f"pw-{uuid.uuid4().hex}",))
    source_root.run(f"CREATE DATABASE {schema}")
    source_root.run(f"CREATE DEFINER='{user}'@'%' SQL SECURITY DEFINER VIEW {schema}.report AS SELECT 1 AS one")
    source_root.run("SET SESSION sql_log_bin = 1")
    try:
        carried = check(run_plan(sandbox, tmp_path), "target.definers")
        without = run_plan(sandbox, tmp_path, seed={"skip_accounts": [user]})
        skipped = check(without, "target.definers")
    finally:
        source_root.run("SET SESSION sql_log_bin = 0")
        source_root.run(f"DROP USER '{user}'@'%'")
        source_root.run("SET SESSION sql_log_bin = 1")
    assert carried["status"] == "pass" and f"carried by start: '{user}'@'%'" in carried["evidence"], carried
    assert skipped["status"] == "warn" and f"not carried by start: '{user}'@'%'" in skipped["evidence"], skipped
    assert "1449" in skipped["evidence"] and "seed.skip_accounts" in skipped["fix"]
    accounts = check(without, "source.accounts")  # its account statements would stop the target's replication
    assert accounts["status"] == "warn" and "error 1133" in accounts["evidence"], accounts


@pytest.fixture
def own_pair(sandbox, tmp_path):
    """A source and a target of this test's own (both with binary logs, the target in gtid_strict_mode), and a
    playbook setting that points plan at them."""
    base = tmp_path / "srv"
    source = MariaDBServer("gtid-source", base / "s", free_port(), server_id=11)
    target = MariaDBServer("gtid-target", base / "t", free_port(), server_id=12,
                           options={"gtid-strict-mode": "1", "log-slave-updates": None, "read-only": "1"})
    try:
        for server in (source, target):
            server.init()
            with server.root() as root:
                root.run("CREATE USER 'dba'@'127.0.0.1' IDENTIFIED BY 'own-pair-pw-1'")
                root.run("GRANT ALL PRIVILEGES ON *.* TO 'dba'@'127.0.0.1' WITH GRANT OPTION")
                root.run("CREATE USER 'app_rw'@'%%' IDENTIFIED BY %s", (sandbox.secret("app"),))
                root.run("GRANT SELECT, INSERT ON *.* TO 'app_rw'@'%'")
                root.run("RESET MASTER")  # the test counts each server's own transactions from here
        (tmp_path / "dba.pw").write_text("own-pair-pw-1")
        login = {"user": "dba", "password_file": str(tmp_path / "dba.pw")}
        yield source, target, {
            "source": {"kind": "mysql", "host": "127.0.0.1", "port": source.port, **login},
            "target": {"port": target.port, **login, "datadir": str(target.datadir)},
            "probe": {"host": "127.0.0.1", "port": source.port}}
    finally:
        source.destroy()
        target.destroy()


def test_a_target_gtid_history_or_position_that_does_not_fit_the_source_fails(sandbox, tmp_path, own_pair):
    source, target, pb = own_pair
    with source.root() as s:
        s.run("CREATE DATABASE shop")
        s.run("CREATE TABLE shop.t (id INT PRIMARY KEY)")
        s.run("INSERT INTO shop.t VALUES (1)")  # the source's domain 0 now at 0-11-3
    assert check(run_plan(sandbox, tmp_path, **pb), "replication.gtid_history")["status"] == "pass"
    with target.root() as t:  # five transactions of the target's own in domain 0: 0-12-5
        for i in range(5):
            t.run(f"CREATE DATABASE own_{i}")
    c = check(run_plan(sandbox, tmp_path, **pb), "replication.gtid_history")
    assert c["status"] == "fail" and "target at 0-12-5, source at 0-11-3" in c["evidence"], c["evidence"]
    assert "error 1950" in c["evidence"]
    with target.root() as t:
        t.run("SET GLOBAL gtid_strict_mode = OFF")
    c = check(run_plan(sandbox, tmp_path, **pb), "replication.gtid_history")
    assert c["status"] == "warn" and "of its own" in c["evidence"], c
    with target.root() as t:  # replicating from the source, at a position the source never logged
        t.run("RESET MASTER")
        t.run(f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={source.port}, MASTER_USER='x', "
              "MASTER_USE_GTID=slave_pos")
        t.run("SET GLOBAL gtid_slave_pos = '0-11-99'")
    c = check(run_plan(sandbox, tmp_path, **pb), "replication.position")
    assert c["status"] == "fail" and "0-11-99: ahead of the source (0-11-3)" in c["evidence"], c
    with source.root() as s:  # the binary logs after 0-11-1 purged
        s.run("FLUSH BINARY LOGS")
        s.run("PURGE BINARY LOGS TO %s", (s.run("SHOW BINARY LOGS")[-1]["Log_name"],))
    with target.root() as t:
        t.run("SET GLOBAL gtid_slave_pos = '0-11-1'")
    c = check(run_plan(sandbox, tmp_path, **pb), "replication.position")
    assert c["status"] == "fail" and "starts after 0-11-3" in c["evidence"] and "purged" in c["evidence"], c
    with target.root() as t:
        t.run("SET GLOBAL gtid_slave_pos = '0-11-3'")
    assert check(run_plan(sandbox, tmp_path, **pb), "replication.position")["status"] == "pass"


def test_start_s_own_filter_passes_and_any_other_filter_fails(sandbox, tmp_path, own_pair):
    _, target, pb = own_pair
    result = run_plan(sandbox, tmp_path, **pb)
    assert result["plan"]["replication_filters"] == {"replicate_wild_ignore_table": "mysql.rds%"}
    with target.root() as t:
        t.run("SET GLOBAL replicate_wild_ignore_table = 'mysql.rds%'")  # as start leaves it
    c = check(run_plan(sandbox, tmp_path, **pb), "target.replication_filters")
    assert c["status"] == "pass" and "start sets replicate_wild_ignore_table=mysql.rds%" in c["evidence"], c
    with target.root() as t:
        t.run("SET GLOBAL replicate_wild_ignore_table = 'mysql.rds%,shop.audit%'")
    c = check(run_plan(sandbox, tmp_path, **pb), "target.replication_filters")
    assert c["status"] == "fail" and "shop.audit%" in c["evidence"], c


def test_a_target_user_that_cannot_grant_proxy_fails_when_a_carried_account_holds_a_proxy_grant(
        sandbox, tmp_path, source_root, target_root):
    proxy, proxied = f"px_{uuid.uuid4().hex[:6]}", f"pd_{uuid.uuid4().hex[:6]}"
    source_root.run("SET SESSION sql_log_bin = 0")
    for user in (proxy, proxied):
        source_root.run(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", (f"pw-{uuid.uuid4().hex}",))
    source_root.run(f"GRANT PROXY ON '{proxied}'@'%' TO '{proxy}'@'%'")
    source_root.run("SET SESSION sql_log_bin = 1")
    admin, login = _account(target_root, tmp_path, ["GRANT ALL PRIVILEGES ON *.* TO {user} WITH GRANT OPTION"])
    try:
        without = check(run_plan(sandbox, tmp_path, target=login), "target.user_privileges")
        sandbox_user = check(run_plan(sandbox, tmp_path), "target.user_privileges")
    finally:
        source_root.run("SET SESSION sql_log_bin = 0")
        for user in (proxy, proxied):
            source_root.run(f"DROP USER '{user}'@'%'")
        source_root.run("SET SESSION sql_log_bin = 1")
        target_root.run(f"DROP USER '{admin}'@'%'")
    assert without["status"] == "fail" and f"proxy grants of '{proxy}'@'%'" in without["evidence"], without
    assert "GRANT PROXY ON ''@'%'" in without["fix"]
    assert sandbox_user["status"] == "pass", sandbox_user  # the sandbox's target.user holds it


def test_an_existing_replication_account_that_cannot_log_in_as_start_would_fails(sandbox, tmp_path, master):
    tls_only, login = _account(master, tmp_path, ["GRANT REPLICATION SLAVE ON *.* TO {user}"], require_ssl=True)
    plain, plain_login = _account(master, tmp_path, ["GRANT REPLICATION SLAVE ON *.* TO {user}"])
    try:
        refused = check(run_plan(sandbox, tmp_path, replication=login), "replication.login")
        wrong = check(run_plan(sandbox, tmp_path, replication={**plain_login, "password_file": login["password_file"]}),
                      "replication.login")
        fine = check(run_plan(sandbox, tmp_path, replication=plain_login), "replication.login")
    finally:
        master.run(f"DROP USER '{tls_only}'@'%'")
        master.run(f"DROP USER '{plain}'@'%'")
    assert refused["status"] == "fail" and "refused without TLS" in refused["evidence"], refused
    assert wrong["status"] == "fail" and "(1045)" in wrong["evidence"] and "without TLS" not in wrong["evidence"]
    assert fine["status"] == "pass", fine
