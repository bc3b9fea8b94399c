"""A bad network never hurts: faults injected on real connections, one row per (link, fault, phase).

A sandbox of this module's own, whose every link goes through a fault proxy of the suite's own
(tests/tcp_proxy.py), switched between pass, stall (a black hole), drop (FIN) and reset (RST):

    migrate-source   127.0.0.1:P  -> source    migrate's own sessions to the source (the playbook's source)
    migrate-target   127.0.0.1:Q  -> target    migrate's own sessions to the target (the playbook's target)
    replication      127.0.0.2:P  -> source    the target host's dump and the target's replication from the source
                                               (replication.source_host: 127.0.0.2, same port)
    reverse          127.0.0.2:Q  -> target    the source's reverse replication from the target
    seed-replica     127.0.0.1:R  -> replica   the RDS read replica the seed dumps (seed.consistency auto on RDS:
                                               migrate stops it at a position, the target host dumps it)

The application (HAProxy, and the probe through it) reaches the servers on a path of its own, as it does in
production: a fault between migrate and a server is not a fault between the application and it.

Every row runs the real `migrate` command; the fault lands at a step through the runner's test hold point (the
kill matrix's), or at the dump's first row through the proxy's trigger. Each row says what must follow: the seed
retries or fails clean with the reason and a rerun finishes; replication reconnects and `status` says what is
happening meanwhile, nothing lost; a switch step that cannot finish rolls back within its timeout, exit 3, the
application writing on the source again, no acknowledged write lost, the probe's gap in the report.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate.adapters.db import DatabaseError
from migrate.adapters.haproxy import HaproxyAdmin
from migrate.capabilities import heartbeat, replication
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.haproxy import BACKEND, SERVER
from migrate.sandbox.sandbox import MASTER_USER, Sandbox
from tests.helpers import ROOT, endpoint_as, fingerprint, open_session, wait_for, write_playbook
from tests.switching import FAST, Load, app_endpoint, journal, missing_orders, phase_of, to_phase
from tests.tcp_proxy import TcpProxy

REPLICATION_HOST = "127.0.0.2"  # the target host's own path to the source (and the source's to the target)
TIMEOUT_S = 2  # cutover.timeout_s: a switch step that cannot finish fails after timeout_s + 10 s
NET_TIMEOUT_S = 5  # slave_net_timeout on both servers: a replica notices a silent link in seconds, not a minute


@dataclass
class Net:
    sb: Sandbox
    links: dict[str, TcpProxy]
    playbook: Path

    def heal(self) -> None:
        for proxy in self.links.values():
            proxy._armed = None
            proxy.set("pass")


def _proxy_pair(to_port: int) -> tuple[TcpProxy, TcpProxy]:
    """Two proxies to one server on the same port, one on 127.0.0.1 (migrate's path), one on 127.0.0.2 (the
    servers' path): replication reaches the source on the playbook's port, at replication.source_host."""
    for _ in range(20):
        first = TcpProxy("127.0.0.1", to_port)
        try:
            return first, TcpProxy("127.0.0.1", to_port, host=REPLICATION_HOST, port=first.port)
        except OSError:
            first.close()
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Iterator[Net]:
    with sandbox_mod.temporary(2000) as sb:
        links: dict[str, TcpProxy] = {}
        try:
            links["migrate-source"], links["replication"] = _proxy_pair(sb.ports["source"])
            links["migrate-target"], links["reverse"] = _proxy_pair(sb.ports["target"])
            links["seed-replica"] = TcpProxy("127.0.0.1", sb.ports["replica"])
            for server in (sb.source, sb.target):
                with server.root() as r:
                    r.run(f"SET GLOBAL slave_net_timeout = {NET_TIMEOUT_S}")
            pb = write_playbook(
                sb.playbook_path, tmp_path_factory.mktemp("net") / "net.yml",
                source={"host": "127.0.0.1", "port": links["migrate-source"].port},
                target={"port": links["migrate-target"].port},
                replication={"source_host": REPLICATION_HOST, "target_host": REPLICATION_HOST},
                seed={"stall_timeout_s": 2, "replica_host": "127.0.0.1", "replica_port": links["seed-replica"].port},
                cutover={**FAST, "timeout_s": TIMEOUT_S})
            yield Net(sb, links, pb)
        finally:
            for proxy in links.values():
                proxy.close()


# -- running migrate ------------------------------------------------------------------------------


@dataclass
class Ran:
    code: int
    out: str  # stdout and stderr, interleaved
    seconds: float


def _spawn(net: Net, *args: str, hold: str | None = None, hold_s: float = 1.0, log: Path) -> subprocess.Popen:
    env = {**os.environ}
    if hold:
        env.update(MIGRATE_TEST_HOLD=hold, MIGRATE_TEST_HOLD_S=str(hold_s))
    return subprocess.Popen([sys.executable, "-m", "migrate", *args, "-p", str(net.playbook)], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen, log: Path, started: float, timeout: float = 120) -> Ran:
    try:
        proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return Ran(proc.returncode, log.read_text(), time.monotonic() - started)


def migrate(net: Net, *args: str, tmp: Path, expect: int | None = 0, timeout: float = 120) -> Ran:
    log = tmp / f"out-{time.monotonic_ns()}.txt"
    ran = _finish(_spawn(net, *args, log=log), log, time.monotonic(), timeout)
    assert "Traceback" not in ran.out, ran.out[-3000:]
    if expect is not None:
        assert ran.code == expect, f"migrate {' '.join(args)} exited {ran.code}, wanted {expect}:\n{ran.out[-3000:]}"
    return ran


def _held(net: Net, pid: int) -> bool:
    return any(e["event"] == "held" and e.get("pid") == pid for e in journal(net.sb)[-8:])


def app_direct(net: Net) -> None:
    """The application reaches the server it is on by its own path (a repoint pointed HAProxy at migrate's)."""
    port = net.sb.ports[phase_of(net.sb).app_on if (net.sb.dir / "state" / "sandbox" / "state.json").exists()
                        else "source"]
    HaproxyAdmin(net.sb.haproxy.admin_socket).set_server_addr(BACKEND, SERVER, "127.0.0.1", port)


# -- the fault proxy and the session under it --------------------------------------------------------


def _echo_server() -> socket.socket:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return

            def echo(c=conn) -> None:
                with c, contextlib.suppress(OSError):  # the proxy's reset reaches this side too
                    while data := c.recv(4096):
                        c.sendall(data)
            threading.Thread(target=echo, daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_the_fault_proxy_passes_stalls_drops_and_resets():
    listener = _echo_server()
    try:
        with TcpProxy("127.0.0.1", listener.getsockname()[1]) as proxy:
            c = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
            c.sendall(b"one")
            assert c.recv(10) == b"one"
            proxy.set("stall")
            c.sendall(b"two")
            c.settimeout(0.5)
            with pytest.raises(TimeoutError):
                c.recv(10)
            proxy.set("pass")  # what was held flows on
            c.settimeout(2)
            assert c.recv(10) == b"two"
            proxy.set("drop")
            assert c.recv(10) == b""
            late = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
            assert late.recv(10) == b""
            proxy.set("pass")
            r = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
            r.sendall(b"three")
            assert r.recv(10) == b"three"
            proxy.set("reset")
            with pytest.raises(ConnectionResetError):
                r.recv(10)
    finally:
        listener.close()


def test_closing_a_session_wakes_a_statement_waiting_on_a_silent_link(net):
    """A step cancelled at its timeout closes its sessions; a statement blocked on a stalled link must return
    then, not at its read timeout a minute later (the runner would roll back while it still waits)."""
    with TcpProxy("127.0.0.1", net.sb.ports["source"]) as proxy:
        session = open_session(endpoint_as(proxy.port, MASTER_USER, net.sb.secret("source")))
        proxy.set("stall")
        ended: dict[str, float] = {}

        def statement() -> None:
            with contextlib.suppress(DatabaseError):
                session.value("SELECT 1")
            ended["at"] = time.monotonic()

        worker = threading.Thread(target=statement, daemon=True)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), "the statement should wait on the stalled link"
        closed_at = time.monotonic()
        session.close()
        worker.join(5)
        assert not worker.is_alive() and ended["at"] - closed_at < 2


# -- the seed ---------------------------------------------------------------------------------------


def unseeded(net: Net) -> None:
    """Back to before `migrate start`: the application on the source, the target empty and replicating from
    nothing, no migration state (the servers keep their accounts)."""
    net.heal()
    if (net.sb.dir / "state" / "sandbox" / "state.json").exists() and phase_of(net.sb).app_on != "source":
        to_phase(net.sb, net.playbook, "replicating")
    with net.sb.target.root() as t:
        t.run("STOP ALL SLAVES")
        t.run("RESET SLAVE ALL")
        t.run("SET SESSION sql_log_bin = 0")
        for schema in ("shop", "_migrate"):
            t.run(f"DROP DATABASE IF EXISTS `{schema}`")
    shutil.rmtree(net.sb.dir / "state", ignore_errors=True)
    app_direct(net)


def replicating(net: Net, tmp: Path) -> None:
    """`migrate start` done (the application on the source, the target replicating from it)."""
    net.heal()
    if not (net.sb.dir / "state" / "sandbox" / "state.json").exists() or phase_of(net.sb).phase in ("new", "seeding"):
        migrate(net, "start", tmp=tmp)
    to_phase(net.sb, net.playbook, "replicating")
    app_direct(net)
    with open_session(app_endpoint(net.sb)) as app:  # an earlier row left the application able to write
        app.run("CALL shop.place_order(6, 'SKU-0006', 1, 600, @o)")


def same_orders(net: Net, timeout: float = 30) -> None:
    """Every order on the source is on the target, byte for byte (once the target has caught up)."""
    def equal() -> bool:
        with net.sb.source.root() as s, net.sb.target.root() as t:
            return fingerprint(s, "shop", "orders", "id", None) == fingerprint(t, "shop", "orders", "id", None)
    try:
        wait_for(equal, timeout, "the target to hold every order of the source")
    except AssertionError:
        with net.sb.source.root() as s, net.sb.target.root() as t:
            ids = [{r["id"] for r in x.run("SELECT id FROM shop.orders")} for x in (s, t)]
            raise AssertionError(f"the target differs: {len(ids[0])} orders on the source, {len(ids[1])} on the "
                                 f"target; only on the source: {sorted(ids[0] - ids[1])[:10]}; only on the target: "
                                 f"{sorted(ids[1] - ids[0])[:10]}; target replica: "
                                 f"{t.one(t.dialect.replica_status())}") from None


@dataclass(frozen=True)
class SeedCase:
    link: str
    fault: str
    retried: bool  # the seed retries by itself (a stalled dump is stopped and started over once)

    def __str__(self) -> str:
        return f"seed-{self.link}-{self.fault}"


DUMP_ROWS = b"SQL_NO_CACHE"  # the dump's first read of a table's rows (mydumper and mariadb-dump alike)
SEED_CASES = [SeedCase("seed-replica", "drop", False), SeedCase("seed-replica", "reset", False),
              SeedCase("seed-replica", "stall", True)]


@pytest.mark.parametrize("case", SEED_CASES, ids=str)
def test_a_seed_whose_dump_loses_the_source_retries_or_fails_clean_and_a_rerun_finishes(net, tmp_path, case):
    unseeded(net)
    proxy = net.links[case.link]
    proxy.arm(DUMP_ROWS, case.fault)
    log = tmp_path / "start.txt"
    started = time.monotonic()
    proc = _spawn(net, "start", log=log)
    try:
        if case.retried:
            wait_for(lambda: "starting it over" in log.read_text(), 60, "the stalled dump to be started over")
            net.heal()
        ran = _finish(proc, log, started)
    finally:
        net.heal()
    assert "Traceback" not in ran.out, ran.out[-3000:]
    assert proxy._armed is None, "the fault never fired: the dump did not go through the link"
    if case.retried:
        assert ran.code == 0, ran.out[-3000:]
        assert "the dump stalled and was stopped; starting it over once" in ran.out
    else:
        assert ran.code == 4, ran.out[-3000:]
        # The reason is the dump tool's own: mydumper 0.10 reports a lost connection, or crashes on it (exit 139).
        error = ran.out.split("error: ", 1)[-1]
        assert error.startswith("start: step seed failed: on target host: `mydumper") and "exited" in error, error
        assert "next:" in ran.out and "rerun `migrate start`: it resumes" in ran.out
        migrate(net, "start", tmp=tmp_path)
    assert ran.seconds < 60
    assert phase_of(net.sb).phase == "replicating"
    with net.sb.source.root() as s:
        s.run("CALL shop.place_order(4, 'SKU-0004', 1, 400, @o)")  # binlogged: replicates
    same_orders(net)


# -- a switch step -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwitchCase:
    step: str
    link: str
    fault: str
    point: str = "start"  # where the runner holds the step while the link breaks (see the kill matrix)
    # until_failed: healed as the step fails | blip: healed a second later, while the rollback tries again |
    # until_exit: healed once migrate has ended
    lasts: str = "until_failed"

    def __str__(self) -> str:
        return (f"cutover-{self.step}{'' if self.point == 'start' else '-' + self.point}-{self.link}-{self.fault}"
                + {"until_failed": "", "blip": "-blip", "until_exit": "-persists"}[self.lasts])


SWITCH_CASES = [
    SwitchCase("gates", "migrate-source", "stall", point="middle"),  # its sessions are open: sampling stalls
    SwitchCase("gates", "migrate-target", "drop", point="middle"),
    SwitchCase("block_writes", "migrate-source", "stall"),
    SwitchCase("block_writes", "migrate-source", "drop"),
    SwitchCase("block_writes", "migrate-source", "reset", point="middle"),  # after the REVOKE: given back
    SwitchCase("final_position", "migrate-source", "drop"),
    SwitchCase("final_position", "migrate-target", "stall"),
    SwitchCase("promote", "migrate-target", "stall"),
    SwitchCase("promote", "migrate-target", "reset"),
    # The source still does not answer when the rollback begins, and answers again a second later.
    SwitchCase("block_writes", "migrate-source", "drop", point="middle", lasts="blip"),
    # The source stays unreachable after the REVOKE: the rollback cannot give the grants back, says so, and the
    # command it names finishes the undo once the source answers.
    SwitchCase("block_writes", "migrate-source", "drop", point="middle", lasts="until_exit"),
]


def _step_timeouts(net: Net, tmp: Path) -> dict[str, float]:
    """Each step's own timeout, as the cutover's dry run prints it."""
    plan = json.loads(migrate(net, "cutover", "--dry-run", "--json", tmp=tmp).out)
    return {s["step"]: s["timeout_s"] for s in plan["steps"]}


def _events_of(net: Net, pid: int) -> list[dict]:
    events = journal(net.sb)
    run = next((e["run_id"] for e in events if e["event"] == "held" and e.get("pid") == pid), None)
    return [e for e in events if e.get("run_id") == run] if run else []


def _until(proc: subprocess.Popen, predicate, timeout: float, what: str) -> None:
    def check() -> bool:
        if predicate():
            return True
        assert proc.poll() is None, f"migrate ended ({proc.returncode}) before {what}"
        return False
    wait_for(check, timeout, what)


@pytest.mark.parametrize("case", SWITCH_CASES, ids=str)
def test_a_switch_step_that_loses_a_server_rolls_back_within_its_timeout_with_nothing_lost(net, tmp_path, case):
    replicating(net, tmp_path)
    timeout_s = _step_timeouts(net, tmp_path)[case.step]
    proxy = net.links[case.link]
    log = tmp_path / "cutover.txt"
    with Load(net.sb, rate=100) as load_:
        started = time.monotonic()
        proc = _spawn(net, "cutover", "--yes", hold=f"cutover:{case.step}:{case.point}", hold_s=1, log=log)
        try:
            _until(proc, lambda: _held(net, proc.pid), 60, f"the hold at {case.step}")
            proxy.set(case.fault)
            faulted = time.monotonic()
            wait_for(lambda: any(e["event"] == "step_failed" for e in _events_of(net, proc.pid)), timeout_s + 15,
                     f"{case.step} to fail")
            failed = time.monotonic()
            if case.lasts == "blip":
                time.sleep(1)
            if case.lasts != "until_exit":
                net.heal()
            ran = _finish(proc, log, started)
        finally:
            net.heal()
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert "Traceback" not in ran.out, ran.out[-3000:]
        if case.lasts == "until_exit":
            assert ran.code == 4 and "the rollback did not complete" in ran.out, ran.out[-3000:]
            assert f"migrate cutover -p {net.playbook}" in ran.out  # what to run once the source answers
            assert phase_of(net.sb).writes_blocked
            again = migrate(net, "cutover", "--yes", tmp=tmp_path)
            assert "was undone" in again.out, again.out[-2000:]
        else:
            assert ran.code == 3, f"exit {ran.code}:\n{ran.out[-3000:]}"
        time.sleep(0.3)  # the application writes on the source again
    events = _events_of(net, proc.pid)
    failure = next(e for e in events if e["event"] == "step_failed")
    assert failure["step"] == case.step, failure
    assert failed - faulted < timeout_s + 2, f"{case.step} took {failed - faulted:.1f} s to give up"
    if case.lasts == "blip":
        assert "rollback failed; trying again" in ran.out, ran.out[-3000:]
    if case.lasts != "until_exit":
        error = ran.out.split("error: ", 1)[-1]
        assert error.startswith(f"cutover: step {case.step} failed: ") and "the source is as it was" in error, error
        assert all(e["event"] != "rollback_failed" for e in events), events
    now = phase_of(net.sb)
    assert now.phase in ("replicating", "rolled_back") and now.app_on == "source" and not now.writes_blocked, now
    with open_session(app_endpoint(net.sb)) as app:
        assert app.value("SELECT @@port") == net.sb.ports["source"]
        app.run("CALL shop.place_order(5, 'SKU-0005', 1, 500, @o)")
    with net.sb.target.root() as t:
        status = replication.read_status(t)
        assert status.healthy and t.variable("read_only") == 1, status
    with net.sb.source.root() as s:
        assert load_.result.acked_order_ids and missing_orders(s, load_.result.acked_order_ids) == []
    if case.lasts == "until_exit":
        return  # the latest report is the undo's, which runs no probe
    report = json.loads((net.sb.dir / "state" / "sandbox" / "report.json").read_text())
    downtime = report["write_downtime"]
    assert downtime["lost_acknowledged_writes"] == 0
    # The application waited at most one step's timeout and the rollback, and the probe measured what it lived
    # through.
    outside = load_.result.longest_gap_s * 1000
    assert outside < (timeout_s + 5) * 1000, f"the application could not write for {outside:.0f} ms"
    assert downtime["longest_gap_ms"] >= 0.8 * outside - 100, (downtime, outside)


@pytest.mark.parametrize("step", ["forget_old_source"])
def test_past_the_point_of_no_return_a_lost_target_stops_the_switch_and_a_rerun_finishes_it(net, tmp_path, step):
    """The application already writes on the target: nothing is undone, the message says so, and once the link
    heals the same command finishes the switch."""
    replicating(net, tmp_path)
    log = tmp_path / "cutover.txt"
    with Load(net.sb, rate=100) as load_:
        proc = _spawn(net, "cutover", "--yes", hold=f"cutover:{step}:start", hold_s=1, log=log)
        try:
            _until(proc, lambda: _held(net, proc.pid), 60, f"the hold at {step}")
            net.links["migrate-target"].set("drop")
            wait_for(lambda: any(e["event"] == "step_failed" for e in _events_of(net, proc.pid)), 30, f"{step} to fail")
            ran = _finish(proc, log, time.monotonic())
        finally:
            net.heal()
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert "Traceback" not in ran.out and ran.code == 4, ran.out[-3000:]
        assert f"step {step} failed after the point of no return" in ran.out and "do not roll back" in ran.out
        assert phase_of(net.sb).app_on == "target"
        migrate(net, "cutover", "--yes", tmp=tmp_path)
        time.sleep(0.3)
    now = phase_of(net.sb)
    assert now.phase == "cut_over" and not now.writes_blocked, now
    app_direct(net)
    with open_session(app_endpoint(net.sb)) as app:
        assert app.value("SELECT @@port") == net.sb.ports["target"]
        app.run("CALL shop.place_order(7, 'SKU-0007', 1, 700, @o)")
    with net.sb.source.root() as s:
        assert replication.read_status(s).healthy  # the source follows the target: the way back
    with net.sb.target.root() as t:
        assert missing_orders(t, load_.result.acked_order_ids) == []


# -- the replication's catch-up ------------------------------------------------------------------------


def _status(net: Net, tmp: Path) -> dict:
    return json.loads(migrate(net, "status", "--json", tmp=tmp).out)


def test_a_silent_replication_link_reads_0_on_the_server_while_the_heartbeat_tells_the_true_delay(net, tmp_path):
    """MySQL bug 82499's lie: the IO thread still says it runs, the SQL thread has applied all it received, so
    Seconds_Behind_Master reads 0 while the source writes on. The heartbeat (written on the source through
    migrate's own path) and the position both say how far behind the replica really is."""
    replicating(net, tmp_path)
    m = Migration(load(net.playbook))
    with heartbeat.Writer(m.source_endpoint, 0.5, "test"), Load(net.sb, rate=50):
        time.sleep(1.5)
        net.links["replication"].set("stall")
        stalled = time.monotonic()
        try:
            time.sleep(3)  # under slave_net_timeout (5 s): the replica has not noticed
            with net.sb.source.root() as s, net.sb.target.root() as t:
                before = time.monotonic()
                beat = heartbeat.read_lag(s, t, int(s.value("SELECT @@server_id")))
                after = time.monotonic()
                status = replication.read_status(t)
                position = replication.measure_lag(s, status)
        finally:
            net.heal()
    assert status.io_state == "running" and status.sql_running and status.seconds_behind == 0, status
    assert before - stalled - 0.5 <= beat.lag_s <= after - stalled + 0.5, (beat, before - stalled)
    assert not position.caught_up and (position.bytes_behind or 0) > 0, position
    wait_for(lambda: _status(net, tmp_path)["lag"]["caught_up"], 30, "the replica to catch up once healed")


def test_the_heartbeat_writer_rides_out_a_lost_source_and_says_so(net, tmp_path):
    replicating(net, tmp_path)
    said: list[str] = []
    m = Migration(load(net.playbook))
    with heartbeat.Writer(m.source_endpoint, 0.2, "test", on_change=said.append) as writer:
        wait_for(lambda: writer.written >= 2, 10, "the first writes")
        net.links["migrate-source"].set("reset")
        try:
            wait_for(lambda: writer.failed >= 1, 10, "a write to fail")
        finally:
            net.heal()
        resumed = writer.written
        wait_for(lambda: writer.written >= resumed + 3, 20, "writes again")
    assert any(s.startswith("failing on source") for s in said) and said[-1].startswith("writing on source"), said


@pytest.mark.parametrize("fault", ["stall", "drop", "reset"])
def test_replication_through_a_broken_link_reconnects_and_status_says_what_is_happening(net, tmp_path, fault):
    """The target's link to the source breaks while the application writes: `status` says the replica is
    reconnecting, in the server's own words; once the link heals it catches up by itself, nothing lost."""
    replicating(net, tmp_path)
    link = net.links["replication"]
    seen: list[dict] = []
    with Load(net.sb, rate=100) as load_:
        time.sleep(0.5)
        link.set(fault)
        try:
            def reported() -> bool:
                seen.append(_status(net, tmp_path))
                return not seen[-1]["replication"]["healthy"]
            # A silent link is noticed after slave_net_timeout; a closed one at once.
            wait_for(reported, 2 * NET_TIMEOUT_S + 10, "status to see the replica's link broken")
            time.sleep(1)
        finally:
            net.heal()
        healed = time.monotonic()
    said = seen[-1]
    rep = said["replication"]
    assert rep["io"] == "connecting" and rep["sql"] == "running" and said["lag"]["caught_up"] is False, rep
    # "replication", or "forward replication" once a rollback made the target follow the source again
    warning = next((w for w in said["warnings"] if "replication (target from source) is not running" in w), None)
    assert warning, said["warnings"]
    assert f"reconnecting to {REPLICATION_HOST}:{link.port} by itself" in warning, warning
    if fault != "stall":  # a silent link gives the server nothing to say yet
        # (2013) lost during the handshake, or (2003) refused or reset as it connects
        assert re.match(r"\((2003|2013)\) error reconnecting to master", rep["last_error"]), rep
        assert f"the target says: {rep['last_error']}" in warning, warning
    assert "the target cannot reach the source" in warning  # the hint
    wait_for(lambda: _status(net, tmp_path)["replication"]["healthy"], 30, "replication to reconnect")
    same_orders(net)
    assert time.monotonic() - healed < 30
    with net.sb.target.root() as t:
        assert load_.result.acked_order_ids and missing_orders(t, load_.result.acked_order_ids) == []
    assert _status(net, tmp_path)["warnings"] == []
