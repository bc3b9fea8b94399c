"""The switch tried as a DBA having a bad night would: reruns, kills, mistakes, a misconfigured probe. Each test
names the finding it guards against. One sandbox of this module's own; every test first brings it to the
phase it needs, so the tests pass in any order."""

from __future__ import annotations

import json
import signal
import time

import pytest

from migrate.capabilities import replication
from migrate.sandbox import sample_data
from tests.helpers import open_session, spawn_migrate, wait_for, write_playbook
from tests.switching import (
    Load,
    app_endpoint,
    fast_playbook,
    journal,
    migrate,
    missing_orders,
    phase_of,
    primary_of,
    started_sandbox,
    state,
    to_phase,
)
from tests.tcp_proxy import TcpProxy


@pytest.fixture(scope="module")
def sb():
    with started_sandbox() as made:
        yield made


def root_cnf(sb, server, tmp_path) -> str:
    """A client option file for `server`'s root (hooks run the mariadb client with it)."""
    cnf = tmp_path / f"{server.name}.cnf"
    cnf.write_text(f"[client]\nuser=root\npassword=\"{server.root_password_file.read_text().strip()}\"\n"
                   f"socket={server.socket}\n")
    cnf.chmod(0o600)
    return str(cnf)


def assert_app_writes_on(sb, name: str) -> None:
    with open_session(app_endpoint(sb)) as app:
        assert app.value("SELECT @@port") == sb.ports[name]
        app.run("CALL shop.place_order(1, 'SKU-0001', 1, 100, @o)")


def test_a_rerun_after_a_rollback_waits_for_its_own_final_position(sb, tmp_path):
    """Finding 1: the second cutover compared against the first run's final position and promoted a target
    that had not applied a 120,000-row UPDATE committed just before the block."""
    pb = fast_playbook(sb, tmp_path)
    to_phase(sb, pb, "replicating")
    with sb.source.root() as s:  # binlogged: it replicates to the target
        s.run("CREATE DATABASE t_big")
        s.run("CREATE TABLE t_big.big (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
        s.run("INSERT INTO t_big.big SELECT seq, 0 FROM t_big.seq_1_to_120000")
    try:
        stop_sql = f"mariadb --defaults-file={root_cnf(sb, sb.target, tmp_path)} -e 'STOP SLAVE SQL_THREAD'"
        first = write_playbook(pb, tmp_path / "first.yml", cutover={"timeout_s": 2},
                               hooks={"before_cutover": stop_sql})
        migrate("cutover", "-p", str(first), "--yes", expect=3)
        assert phase_of(sb).phase in ("replicating", "rolled_back")

        batch = f"mariadb --defaults-file={root_cnf(sb, sb.source, tmp_path)} -e 'UPDATE t_big.big SET v = v + 1'"
        second = write_playbook(pb, tmp_path / "second.yml", hooks={"before_cutover": batch})
        with Load(sb) as load_:
            result = migrate("cutover", "-p", str(second), "--yes", "--json")
        report = json.loads(result.stdout)["report"]
        final = next(s for s in report["steps"] if s["name"] == "final_position")
        assert final["status"] == "done" and "applied on target" in final["message"], final
        with sb.target.root() as t:
            assert t.value("SELECT SUM(v) FROM t_big.big") == 120_000
            assert missing_orders(t, load_.result.acked_order_ids) == []
        assert report["write_downtime"]["lost_acknowledged_writes"] == 0
    finally:
        with primary_of(sb).root() as p:  # binlogged: the other server drops it too
            p.run("DROP DATABASE IF EXISTS t_big")


def test_start_after_a_cutover_is_refused_and_points_at_rollback(sb, tmp_path):
    """Finding 3: `start` after a cutover made the new primary a replica of the old source again."""
    pb = fast_playbook(sb, tmp_path)
    to_phase(sb, pb, "cut_over")
    result = migrate("start", "-p", str(pb), expect=1)
    assert "refused" in result.stdout and f"migrate rollback -p {pb}" in result.stdout
    with sb.target.root() as t:
        assert not replication.read_status(t).configured and not t.variable("read_only")
    assert_app_writes_on(sb, "target")
    plan = json.loads(migrate("plan", "-p", str(pb), "--json", expect=None).stdout)
    check = next(c for c in plan["checks"] if c["id"] == "migration.phase")
    assert check["status"] == "warn" and "cut over" in check["evidence"] and "migrate rollback" in check["fix"]


def test_start_refuses_a_target_that_holds_data_of_its_own(sb, tmp_path):
    """Finding 3: `start` on a target that was not empty overwrote a same-named schema without a word."""
    with sb.target.root() as t:
        t.run("SET SESSION sql_log_bin = 0")
        t.run("CREATE DATABASE IF NOT EXISTS t_only")
        t.run("CREATE TABLE IF NOT EXISTS t_only.keep (id INT PRIMARY KEY)")
        t.run("INSERT IGNORE INTO t_only.keep VALUES (7)")
        orders = t.value("SELECT COUNT(*) FROM shop.orders")
    try:
        other = write_playbook(sb.playbook_path, tmp_path / "other.yml", name="another-migration")
        result = migrate("start", "-p", str(other), expect=1)
        assert "the target is not empty" in result.stdout and "t_only" in result.stdout
        assert "--allow-nonempty-target" in result.stdout
        with sb.target.root() as t:
            assert t.value("SELECT COUNT(*) FROM t_only.keep WHERE id = 7") == 1
            assert t.value("SELECT COUNT(*) FROM shop.orders") >= orders
    finally:
        with sb.target.root() as t:
            t.run("SET SESSION sql_log_bin = 0")
            t.run("DROP DATABASE IF EXISTS t_only")


def test_a_second_cutover_after_a_done_one_touches_nothing_and_keeps_the_report(sb, tmp_path):
    """Finding 4: a second cutover advised read_only on the new primary and replaced the real report."""
    pb = fast_playbook(sb, tmp_path)
    to_phase(sb, pb, "cut_over")
    report_path = sb.dir / "state" / "sandbox" / "report.json"
    before = report_path.read_bytes()
    runs_before = state(sb)["runs"]["cutover"]
    result = migrate("cutover", "-p", str(pb), "--yes")
    assert "already cut over at" in result.stdout and "nothing was touched" in result.stdout
    assert "read_only" not in result.stdout
    assert report_path.read_bytes() == before
    assert state(sb)["runs"]["cutover"] == runs_before
    status = json.loads(migrate("status", "-p", str(pb), "--json").stdout)
    assert status["phase"] == "cut_over" and status["runs"]["cutover"]["status"] == "done"
    assert_app_writes_on(sb, "target")


def _account(sb, user: str, password_file, *, probe_grant: bool) -> None:
    """An account on the source (binlogged, so the target gets it too, as the application's would)."""
    password = "probe-" + user
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    with sb.source.root() as s:
        s.run(f"CREATE USER IF NOT EXISTS '{user}'@'%%' IDENTIFIED BY %s", (password,))
        if probe_grant:
            s.run(f"GRANT INSERT, SELECT ON _migrate.* TO '{user}'@'%'")


def test_a_probe_account_outside_app_users_is_granted_by_start_and_blocked_by_the_cutover(sb, tmp_path):
    """Finding 5: with probe.user not in cutover.app_users, prepare_source gave it nothing and the cutover went on
    with a probe that acknowledged nothing."""
    pb0 = fast_playbook(sb, tmp_path)
    to_phase(sb, pb0, "replicating")
    _account(sb, "probe_only", tmp_path / "probe.pw", probe_grant=False)
    pb = fast_playbook(sb, tmp_path, probe={"user": "probe_only", "password_file": str(tmp_path / "probe.pw")})
    migrate("start", "-p", str(pb))
    result = migrate("cutover", "-p", str(pb), "--yes", "--json")
    report = json.loads(result.stdout)["report"]
    assert report["write_downtime"]["acknowledged"] > 10 and report["write_downtime"]["lost_acknowledged_writes"] == 0
    block = next(s for s in report["steps"] if s["name"] == "block_writes")
    assert "probe_only" in block["message"]


def test_gates_refuse_when_the_probe_cannot_write_and_nothing_changes(sb, tmp_path):
    """Finding 5: a probe that acknowledged nothing from its first second did not stop the cutover."""
    pb0 = fast_playbook(sb, tmp_path)
    to_phase(sb, pb0, "replicating")
    _account(sb, "probe_nogrant", tmp_path / "nogrant.pw", probe_grant=False)
    pb = fast_playbook(sb, tmp_path, probe={"user": "probe_nogrant", "password_file": str(tmp_path / "nogrant.pw")})
    result = migrate("cutover", "-p", str(pb), "--yes", expect=1)
    assert "the probe is not writing" in result.stdout and "(1142)" in result.stdout
    assert phase_of(sb).phase in ("replicating", "rolled_back")
    assert_app_writes_on(sb, "source")


def test_gates_refuse_a_probe_endpoint_the_haproxy_repoint_does_not_move(sb, tmp_path):
    """Finding 5: with probe.host fixed to an endpoint the repoint does not move, the cutover went on and failed
    after the point of no return with a hint about grants."""
    pb0 = fast_playbook(sb, tmp_path)
    to_phase(sb, pb0, "replicating")
    with TcpProxy("127.0.0.1", sb.ports["source"]) as proxy:
        pb = fast_playbook(sb, tmp_path, probe={"host": "127.0.0.1", "port": proxy.port})
        result = migrate("cutover", "-p", str(pb), "--yes", expect=1)
        plan = migrate("plan", "-p", str(pb), "--json", expect=None)
    assert "does not go through what the repoint moves" in result.stdout
    probe_check = next(c for c in json.loads(plan.stdout)["checks"] if c["id"] == "cutover.probe")
    assert probe_check["status"] == "warn" and "does not go through" in probe_check["evidence"]
    assert phase_of(sb).phase in ("replicating", "rolled_back")
    assert_app_writes_on(sb, "source")


def test_a_post_check_failure_says_where_the_endpoint_leads_and_writes_are_looked_for_where_the_app_points(
        sb, tmp_path):
    """Finding 5: after the point of no return the post-check blamed grants, and acknowledged writes were looked
    for on the server chosen by whether the runner returned."""
    pb0 = fast_playbook(sb, tmp_path)
    to_phase(sb, pb0, "replicating")
    with TcpProxy("127.0.0.1", sb.ports["source"]) as proxy:
        # A repoint command that moves nothing the probe uses: it cannot be read back, so the gates cannot tell.
        pb = fast_playbook(sb, tmp_path, probe={"host": "127.0.0.1", "port": proxy.port},
                           cutover={"repoint": {"method": "command", "command": {"run": "true"}}})
        result = migrate("cutover", "-p", str(pb), "--yes", expect=4)
    assert "after the point of no return" in result.stdout
    assert "the endpoint reaches server_id 1 (another server, not target)" in result.stdout
    assert "target (server_id 2) is writable" in result.stdout
    assert "grants" not in result.stdout.split("next:")[-1]
    report = json.loads((sb.dir / "state" / "sandbox" / "report.json").read_text())
    assert report["facts"]["application points at"] == "target"
    assert report["write_downtime"]["lost_acknowledged_writes"] == 0
    # The record says the application is on the target; finishing with the right playbook repoints HAProxy.
    assert phase_of(sb).phase == "cutting_over" and phase_of(sb).app_on == "target"
    migrate("cutover", "-p", str(pb0), "--yes")
    assert phase_of(sb).phase == "cut_over"
    assert_app_writes_on(sb, "target")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_cutover_leaves_no_hook_process_behind(sb, tmp_path):
    """Finding 6: a SIGKILLed cutover left its before_cutover hook process running."""
    pb0 = fast_playbook(sb, tmp_path)
    to_phase(sb, pb0, "replicating")
    pid_file = tmp_path / "hook.pid"
    pb = write_playbook(pb0, tmp_path / "hook.yml",
                        hooks={"before_cutover": f"sh -c 'echo $$ > {pid_file}; exec sleep 300'"})
    proc = spawn_migrate("cutover", "-p", str(pb), "--yes")
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 60, "the hook to start")
        hook_pid = int(pid_file.read_text())
        assert _alive(hook_pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_for(lambda: not _alive(hook_pid), 5, "the hook to die with migrate")
    assert phase_of(sb).phase in ("replicating", "rolled_back")  # killed before the block: nothing to undo
    migrate("cutover", "-p", str(pb0), "--yes")  # the next cutover starts over from its gates
    assert phase_of(sb).phase == "cut_over"


def test_after_a_crash_status_says_so_and_the_resumed_report_counts_from_the_first_block(sb, tmp_path):
    """Finding 6: after a crash `status` said "running" with no process alive and did not say writes were
    blocked; the resumed run's report gave 3.2 s where an outside writer measured 16 s."""
    pb = fast_playbook(sb, tmp_path)
    to_phase(sb, pb, "replicating")
    with Load(sb) as load_:
        proc = spawn_migrate("cutover", "-p", str(pb), "--yes", env={"MIGRATE_TEST_HOLD": "cutover:final_position:middle"})
        try:
            wait_for(lambda: any(e["event"] == "held" for e in journal(sb)[-5:]), 60, "the hold in final_position")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        status = json.loads(migrate("status", "-p", str(pb), "--json").stdout)
        assert status["phase"] == "cutting_over" and status["writes_blocked"] is True
        assert status["runs"]["cutover"]["status"].startswith("died")
        assert "WRITES ARE BLOCKED" in status["says"]
        assert f"migrate cutover -p {pb}" in status["next"] and f"migrate rollback -p {pb}" in status["next"]
        time.sleep(3)
        result = migrate("cutover", "-p", str(pb), "--yes", "--json")
        time.sleep(0.5)
    report = json.loads(result.stdout)["report"]
    outside = load_.result.longest_gap_s * 1000
    assert outside > 3000
    downtime = report["write_downtime"]
    assert downtime["resumed_from_block"] is not None
    assert downtime["longest_gap_ms"] >= 0.9 * outside, (downtime, outside)
    with sb.target.root() as t:
        assert missing_orders(t, load_.result.acked_order_ids) == []


def test_cutover_reverse_replication_rollback_and_a_second_cutover_under_load(sb, tmp_path):
    """Finding 7: once the application was on the new primary there was no way back."""
    pb = fast_playbook(sb, tmp_path)
    to_phase(sb, pb, "replicating")
    with Load(sb, rate=200) as load_:
        migrate("cutover", "-p", str(pb), "--yes")
        with open_session(app_endpoint(sb)) as app:
            app.run("CALL shop.place_order(2, 'SKU-0002', 1, 4242, @o)")
            order = app.value("SELECT @o")
        with sb.source.root() as s:
            wait_for(lambda: s.value("SELECT COUNT(*) FROM shop.orders WHERE id = %s", (order,)) == 1, 10,
                  "the write on the new primary to reach the old one")
        status = json.loads(migrate("status", "-p", str(pb), "--json").stdout)
        assert status["replication"]["replica"] == "source" and status["replication"]["healthy"]
        back = json.loads(migrate("rollback", "-p", str(pb), "--yes", "--json").stdout)["report"]
        assert back["write_downtime"]["lost_acknowledged_writes"] == 0
        assert phase_of(sb).phase == "rolled_back" and phase_of(sb).app_on == "source"
        assert_app_writes_on(sb, "source")
        with sb.target.root() as t:
            st = replication.read_status(t)
            assert st.healthy and st.source_port == sb.ports["source"] and t.variable("read_only") == 1
        again = json.loads(migrate("cutover", "-p", str(pb), "--yes", "--json").stdout)["report"]
        assert again["status"] == "done" and again["write_downtime"]["lost_acknowledged_writes"] == 0
    assert load_.result.acked_order_ids
    with sb.target.root() as t:
        assert missing_orders(t, load_.result.acked_order_ids + [order]) == []
    assert sample_data.APP_USER in json.dumps(back["steps"])
