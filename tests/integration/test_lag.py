"""Lag that does not lie, on real servers: the server's Seconds_Behind_Master beside the heartbeat's lag and the
position's, while the replica is made to fall behind in the ways that fool the server's figure; `migrate
heartbeat` paused by a switch and moved to the new primary; `status --watch` writing the heartbeat itself.
(A silent replication link, where the server's figure reads 0, is in test_net_faults: it needs the suite's
fault proxy.)"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from migrate.capabilities import heartbeat, heartbeat_event, replication
from migrate.runner.store import wall_of
from tests.helpers import ROOT, run_migrate, spawn_migrate, wait_for
from tests.killing import Case, kill_then_recover, killed_at
from tests.switching import Load, fast_playbook, journal, phase_of, started_sandbox, to_phase

TRUTH_WITHIN_S = 0.5  # the bound: the heartbeat's lag within 0.5 s of the true delay
LAG_KEYS = {"seconds_behind", "heartbeat_s", "heartbeat_error_s", "heartbeat", "bytes_behind", "files_behind",
            "transactions_behind", "apply_bytes_per_s", "source_bytes_per_s", "apply_transactions_per_s",
            "rate_window_s", "eta_s", "eta_says", "source_position", "applied_position", "caught_up", "retention"}


@pytest.fixture(scope="module")
def sb():
    with started_sandbox() as made:
        yield made


def spawn(*args: str, out) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "migrate", *args], cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL)


def lines_of(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


@pytest.fixture
def beating(sb, tmp_path) -> Iterator[tuple]:
    """`migrate heartbeat` running for the test (its --json lines in a file), stopped by SIGTERM after it."""
    to_phase(sb, fast_playbook(sb, tmp_path), "replicating")
    playbook, out = fast_playbook(sb, tmp_path), tmp_path / "heartbeat.jsonl"
    with out.open("w") as sink:
        proc = spawn("heartbeat", "-p", str(playbook), "--json", out=sink)
    try:
        wait_for(lambda: any("writing on source" in e["heartbeat"] for e in lines_of(out)), 30, "the heartbeat")
        yield playbook, out
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert "stopped:" in lines_of(out)[-1]["heartbeat"]


def source_id(sb) -> int:
    with sb.source.root() as s:
        return int(s.value("SELECT @@server_id"))


def lag_now(sb) -> tuple[heartbeat.HeartbeatLag, float, float, int | None]:
    """The heartbeat's lag, the monotonic times just before and after reading it, the server's own figure."""
    with sb.source.root() as s, sb.target.root() as t:
        before = time.monotonic()
        beat = heartbeat.read_lag(s, t, source_id(sb))
        after = time.monotonic()
        return beat, before, after, replication.read_status(t).seconds_behind


def caught_up(sb) -> None:
    def done() -> bool:
        with sb.source.root() as s, sb.target.root() as t:
            st = replication.read_status(t)
            return st.healthy and replication.measure_lag(s, st).caught_up
    wait_for(done, 60, "the replica to catch up")


def test_a_stopped_sql_thread_reads_null_on_the_server_while_the_heartbeat_tells_the_true_delay(sb, beating):
    playbook, _ = beating
    with Load(sb, rate=50):
        with sb.target.root() as t:
            t.run("STOP SLAVE SQL_THREAD")
        stopped = time.monotonic()
        try:
            time.sleep(3)
            beat, before, after, server = lag_now(sb)
            said = json.loads(run_migrate("status", "-p", str(playbook), "--json").stdout)
            shown = run_migrate("status", "-p", str(playbook)).stdout  # the terminal's view, side by side
        finally:
            with sb.target.root() as t:
                t.run("START SLAVE SQL_THREAD")
    assert server is None and said["lag"]["seconds_behind"] is None
    assert before - stopped - TRUTH_WITHIN_S <= beat.lag_s <= after - stopped + TRUTH_WITHIN_S, (beat, before - stopped)
    lag = said["lag"]
    assert set(lag) == LAG_KEYS and lag["heartbeat"]["fresh"] and lag["heartbeat_s"] > 3
    assert lag["bytes_behind"] > 0 and lag["transactions_behind"] > 0 and lag["caught_up"] is False
    assert lag["apply_bytes_per_s"] == 0 and lag["eta_s"] is None and lag["eta_says"].startswith("not catching up")
    assert "SQL thread was stopped without an error" in said["replication"]["hint"]
    flat = " ".join(shown.split())  # the table wraps at the terminal's width
    for row in ("Seconds_Behind_Master", "heartbeat", "position", "apply rate", "catch-up ETA", "binlog retention"):
        assert row in flat, shown
    assert "NULL" in flat and "not catching up" in flat, shown
    assert abs(lag["heartbeat"]["clock_skew_s"]) < 0.05  # one machine's clock, read twice
    caught_up(sb)


def test_a_long_transaction_on_the_source_leaves_the_heartbeat_at_the_true_delay(sb, beating):
    """A transaction open for 3 s is written to the binlog at its commit with its statements' start times: the
    replica applies it at once (true delay ~0) while its events look 3 s old."""
    with sb.source.root() as s:
        s.run("CREATE TABLE IF NOT EXISTS shop.long_trx (id INT PRIMARY KEY, v INT NOT NULL)")
        s.run("DELETE FROM shop.long_trx")
    caught_up(sb)
    holder = sb.source.root()
    try:
        holder.run("BEGIN")
        holder.run("INSERT INTO shop.long_trx SELECT seq, seq FROM shop.seq_1_to_2000")
        time.sleep(3)
        holder.run("COMMIT")
    finally:
        holder.close()
    seen = []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        beat, *_, server = lag_now(sb)
        seen.append((beat.lag_s, server))
    assert all(lag is not None and lag <= TRUTH_WITHIN_S for lag, _ in seen), seen
    with sb.target.root() as t:
        assert t.value("SELECT COUNT(*) FROM shop.long_trx") == 2000


def test_a_switch_pauses_the_heartbeat_which_then_writes_on_the_new_primary(sb, beating, tmp_path):
    playbook, out = beating
    cut = json.loads(run_migrate("cutover", "-p", str(playbook), "--yes", "--json").stdout)
    gates = next(s["message"] for s in cut["report"]["steps"] if s["name"] == "gates")
    assert "heartbeat lag" in gates, gates  # the gates wrote and read it themselves
    assert cut["report"]["facts"]["lag at the gates"]["heartbeat_ms"] is not None, cut["report"]["facts"]
    wait_for(lambda: any("writing on target" in e["heartbeat"] for e in lines_of(out)), 30, "the move to the target")
    said = [e["heartbeat"] for e in lines_of(out)]
    paused = said.index("paused: a switch is running")
    assert any(s.startswith("writing on source") for s in said[:paused]), said
    assert any(s.startswith("writing on target") for s in said[paused:]), said
    # Nothing reached the old primary after its writes were blocked (its final position came after).
    blocked = max(wall_of(e["ts"]) for e in journal(sb) if e.get("step") == "block_writes"
                  and e["event"] == "step_started")
    with sb.source.root() as s:
        last = s.one(f"SELECT ts FROM {heartbeat.TABLE} WHERE server_id = %s", (source_id(sb),))["ts"]
    assert last.replace(tzinfo=UTC).timestamp() < blocked
    with sb.target.root() as t:  # and the reverse replica, the source, reads the target's heartbeat
        target_id = int(t.value("SELECT @@server_id"))
    wait_for(lambda: _has_row(sb.source, target_id), 10, "the target's heartbeat on the source")
    assert phase_of(sb).phase == "cut_over"
    run_migrate("rollback", "-p", str(playbook), "--yes")
    wait_for(lambda: lines_of(out)[-1]["heartbeat"].startswith("writing on source"), 30, "the move back")


def _has_row(server, server_id: int) -> bool:
    with server.root() as s:
        return s.one(f"SELECT ts FROM {heartbeat.TABLE} WHERE server_id = %s", (server_id,)) is not None


def test_status_watch_refreshes_every_second_and_writes_the_heartbeat_itself(sb, tmp_path):
    playbook, out = fast_playbook(sb, tmp_path), tmp_path / "watch.jsonl"
    to_phase(sb, playbook, "replicating")
    started = time.time()
    with out.open("w") as sink:
        proc = spawn("status", "-p", str(playbook), "--watch", "--json", out=sink)
    try:
        wait_for(lambda: len(lines_of(out)) >= 3, 30, "three refreshes")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    snapshots = lines_of(out)
    assert all(set(s["lag"]) == LAG_KEYS for s in snapshots)
    assert 0.8 <= snapshots[-1]["lag"]["rate_window_s"] <= 3
    with sb.source.root() as s:
        row = s.one(f"SELECT ts, writer FROM {heartbeat.TABLE} WHERE server_id = %s", (source_id(sb),))
    assert row["writer"] == "migrate status --watch" and row["ts"].replace(tzinfo=UTC).timestamp() > started


def test_status_watch_in_a_terminal_redraws_the_lag_table_every_second_until_ctrl_c(sb, tmp_path):
    """The live view a DBA watches: drawn in place (rich Live on a real pseudo-terminal), the heartbeat fresh
    because the view writes it, and Ctrl-C ends it with exit 0 and the terminal's cursor given back."""
    playbook = fast_playbook(sb, tmp_path)
    to_phase(sb, playbook, "replicating")
    screen, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"}
    proc = subprocess.Popen([sys.executable, "-m", "migrate", "status", "-p", str(playbook), "--watch"], cwd=ROOT,
                            stdin=terminal, stdout=terminal, stderr=terminal, env=env, start_new_session=True)
    os.close(terminal)
    drawn = bytearray()

    def read_for(seconds: float) -> None:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if select.select([screen], [], [], 0.1)[0]:
                with contextlib.suppress(OSError):  # EIO once the program has closed the terminal
                    drawn.extend(os.read(screen, 65536))

    try:
        wait_for(lambda: read_for(0.5) or drawn.count(b"catch-up ETA") >= 1, 30, "the first drawing")
        first = drawn.count(b"catch-up ETA")
        read_for(3.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        read_for(0.3)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(screen)
    text = drawn.decode(errors="replace")
    redraws = text.count("catch-up ETA") - first
    assert 2 <= redraws <= 6, (redraws, text[-3000:])  # about once a second, in 3.5 s
    assert "\x1b[?25l" in text and text.rstrip().endswith("\x1b[?25h"), "cursor hidden while live, shown after"
    assert "\x1b[1A" in text or "\x1b[A" in text or "\x1b[2K" in text, "redrawn in place, not scrolled"
    beat = [line for line in text.splitlines() if "clock skew" in line][-1]
    assert " s +-" in beat, beat  # fresh: the view wrote it itself
    assert "replication: target from source" in text and "healthy" in text


def heartbeat_check(playbook) -> dict:
    result = run_migrate("plan", "-p", str(playbook), "--json")
    return next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "cutover.heartbeat")


def test_plan_says_which_heartbeat_writer_is_in_use_and_warns_when_none_runs(sb, tmp_path):
    playbook = fast_playbook(sb, tmp_path, estimates={"binlog_sample_s": 0.1})
    with heartbeat.Writer(sb.source.root_endpoint, 0.5, "a writer of the test's"):
        time.sleep(1)
        running = heartbeat_check(playbook)
    time.sleep(2)  # older than two intervals and the slack: no writer runs
    stopped = heartbeat_check(playbook)
    assert running["status"] == "pass" and "`a writer of the test's` writes it every 0.5 s" in running["evidence"]
    assert stopped["status"] == "warn" and "no writer runs now" in stopped["evidence"]
    assert "migrate heartbeat -p" in stopped["fix"]


def test_a_switch_killed_in_its_middle_keeps_the_heartbeat_paused_until_it_is_finished(sb, beating, tmp_path):
    """The killed switch's lock dies with it, but its phase says a switch is half done: the writer stays off the
    old primary (its final position may be taken again) until the rerun finishes."""
    playbook, out = beating
    killed_at(sb, playbook, Case("cutover", "block_writes", "middle", "cutover"))
    wait_for(lambda: "cutting over" in lines_of(out)[-1]["heartbeat"], 10, "the writer to see the half-done switch")
    with sb.source.root() as s:
        written = s.one(f"SELECT ts FROM {heartbeat.TABLE} WHERE server_id = %s", (source_id(sb),))["ts"]
    time.sleep(1.5)
    with sb.source.root() as s:
        assert s.one(f"SELECT ts FROM {heartbeat.TABLE} WHERE server_id = %s", (source_id(sb),))["ts"] == written
    run_migrate("cutover", "-p", str(playbook), "--yes")
    wait_for(lambda: lines_of(out)[-1]["heartbeat"].startswith("writing on target"), 30, "the writer on the target")
    run_migrate("rollback", "-p", str(playbook), "--yes")


def _schedulers(sb, on: bool) -> None:
    for server in (sb.source, sb.target):
        with server.root() as r:
            r.run(f"SET GLOBAL event_scheduler = {'ON' if on else 'OFF'}")


def _event_status(server) -> str | None:
    with server.root() as r:
        found = heartbeat_event.read(r)
    return found["status"] if found else None


def _last_beat(server, server_id: int):
    with server.root() as r:
        row = r.one(f"SELECT ts, writer FROM {heartbeat.TABLE} WHERE server_id = %s", (server_id,))
    return row and (row["ts"], row["writer"])


def _event_writes(sb) -> bool:
    beat, *_ = lag_now(sb)
    return beat.fresh and beat.writer == heartbeat_event.WRITER


@pytest.fixture
def event_playbook(sb, tmp_path) -> Iterator[Path]:
    """A playbook with heartbeat.event on; afterwards the event dropped by a `start` without it and both event
    schedulers off again, as the module's other tests expect."""
    playbook = fast_playbook(sb, tmp_path, heartbeat={"event": True}, estimates={"binlog_sample_s": 0.1})
    to_phase(sb, playbook, "replicating")
    try:
        yield playbook
    finally:
        to_phase(sb, playbook, "replicating")
        run_migrate("start", "-p", str(fast_playbook(sb, tmp_path)))
        _schedulers(sb, False)
        assert _event_status(sb.source) is None


def test_the_source_writes_its_own_heartbeat_by_an_event_that_the_cutover_stops_before_its_block(sb, event_playbook):
    playbook = event_playbook
    off = heartbeat_check(playbook)
    assert off["status"] == "fail" and "event scheduler is off" in off["evidence"], off
    refused = run_migrate("start", "-p", str(playbook))
    assert refused.returncode != 0 and "event scheduler is off" in refused.stdout + refused.stderr

    _schedulers(sb, True)  # on the target too: its copy of the event must stay off by itself
    started = json.loads(run_migrate("start", "-p", str(playbook), "--json").stdout)
    step = next(s for s in started["steps"] if s["name"] == "heartbeat_event")
    assert step["status"] == "done" and "created" in step["message"], step
    again = json.loads(run_migrate("start", "-p", str(playbook), "--json").stdout)
    assert {s["status"] for s in again["steps"]} == {"skipped"}, again["steps"]
    wait_for(lambda: _event_writes(sb), 10, "the event's heartbeat on the target")
    beats = set()
    for _ in range(8):
        beats.add(_last_beat(sb.source, source_id(sb))[0])
        time.sleep(0.25)
    assert len(beats) >= 3, beats  # twice a second
    running = heartbeat_check(playbook)
    assert running["status"] == "pass" and heartbeat_event.WRITER in running["evidence"], running
    assert _event_status(sb.target) == "SLAVESIDE_DISABLED"

    with Load(sb, rate=100):
        cut = json.loads(run_migrate("cutover", "-p", str(playbook), "--yes", "--json").stdout)
    names = [s["name"] for s in cut["report"]["steps"]]
    assert names.index("stop_heartbeat_event") == names.index("block_writes") - 1, names
    blocked = max(wall_of(e["ts"]) for e in journal(sb) if e.get("step") == "block_writes"
                  and e["event"] == "step_started")
    last, _ = _last_beat(sb.source, source_id(sb))
    assert last.replace(tzinfo=UTC).timestamp() < blocked, "the event wrote after the block"
    assert _event_status(sb.source) == "DISABLED" and _event_status(sb.target) == "SLAVESIDE_DISABLED"
    time.sleep(1.2)
    assert _last_beat(sb.source, source_id(sb))[0] == last  # nothing runs it on either server
    assert _last_beat(sb.target, source_id(sb))[0] == last

    back = json.loads(run_migrate("rollback", "-p", str(playbook), "--yes", "--json").stdout)
    assert back["report"]["steps"][-1]["name"] == "start_heartbeat_event"
    assert _event_status(sb.source) == "ENABLED"
    wait_for(lambda: _event_writes(sb), 10, "the event's heartbeat again after the rollback")


EVENT_KILLS = [Case("cutover", "stop_heartbeat_event", "middle", "rollback"),  # undone: the event writes again
               Case("cutover", "stop_heartbeat_event", "middle", "cutover"),  # finished: it stays off
               Case("rollback", "start_heartbeat_event", "start", "rollback")]  # finished: it writes again


@pytest.mark.parametrize("case", EVENT_KILLS, ids=str)
def test_a_switch_killed_in_a_heartbeat_event_step_leaves_the_event_as_the_switch_ends(sb, event_playbook, case):
    """Killed with the event disabled and a run of it maybe still in its body, or as the rollback was about to
    enable it again: the event ends as the switch does, and nothing acknowledged is lost (kill_then_recover)."""
    _schedulers(sb, True)
    run_migrate("start", "-p", str(event_playbook))
    assert _event_status(sb.source) == "ENABLED"
    on = kill_then_recover(sb, event_playbook, case)
    if on == "source":
        assert _event_status(sb.source) == "ENABLED"
        wait_for(lambda: _event_writes(sb), 10, "the event's heartbeat on the source")
    else:
        assert _event_status(sb.source) == "DISABLED" and _event_status(sb.target) == "SLAVESIDE_DISABLED"


def test_a_start_killed_as_it_installs_the_event_installs_it_when_run_again(sb, event_playbook):
    _schedulers(sb, True)
    proc = spawn_migrate("start", "-p", str(event_playbook), env={"MIGRATE_TEST_HOLD": "start:heartbeat_event:start"})
    try:
        wait_for(lambda: any(e["event"] == "held" and e.get("pid") == proc.pid for e in journal(sb)[-8:]), 60,
                 "start held at heartbeat_event")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _event_status(sb.source) is None
    again = json.loads(run_migrate("start", "-p", str(event_playbook), "--json").stdout)
    assert next(s for s in again["steps"] if s["name"] == "heartbeat_event")["status"] == "done"
    assert _event_status(sb.source) == "ENABLED"
    wait_for(lambda: _event_writes(sb), 10, "the event's heartbeat")
