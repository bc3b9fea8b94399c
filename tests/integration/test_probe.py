"""The write probe measures write downtime from the application's side, on real servers: the application
account writes through HAProxy while the test breaks the path (HAProxy pointed at a closed port) or the
account (its INSERT grant revoked, the lockout a probe counting only gaps between successes missed)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from migrate.adapters.db import Session
from migrate.capabilities.probe import PROBE_SCHEMA, Probe, ProbeResult, ensure_probe_table, grant_probe
from migrate.sandbox import procs, sample_data
from migrate.sandbox.haproxy import BACKEND, SERVER
from tests.helpers import endpoint_as

APP = sample_data.APP_USER
RATE = 100.0


@pytest.fixture(scope="module")
def probe_root(sandbox) -> Iterator[Session]:
    """The probe table on the source and app_rw allowed to write it; all of it undone afterwards. Root's own
    changes are binary-logged like the probe's writes: the sandbox's replica server, which replays the source's
    binlog, must have the table the probe writes to (or it stops, and stays stopped for the later tests)."""
    root = sandbox.source.root()
    existed = root.value("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = %s",
                         (PROBE_SCHEMA,)) == 1
    granted = root.value("SELECT COUNT(*) FROM mysql.db WHERE Db = %s AND User = %s AND Host = '%%'",
                         (PROBE_SCHEMA, APP)) == 1
    ensure_probe_table(root)
    grant_probe(root, APP, "%")
    try:
        yield root
    finally:
        if not granted:
            root.run(f"REVOKE INSERT, SELECT ON {PROBE_SCHEMA}.* FROM '{APP}'@'%'")
        if existed:
            root.run(f"DELETE FROM {PROBE_SCHEMA}.probe WHERE run_id LIKE 'pt%'")
        else:
            root.run(f"DROP DATABASE {PROBE_SCHEMA}")
        root.close()


@pytest.fixture
def probe(sandbox, probe_root) -> Iterator[Probe]:
    """A probe writing as the application, through HAProxy, at 100/s; its rows deleted afterwards."""
    app = endpoint_as(sandbox.ports["haproxy"], APP, sandbox.secret("app"), label="application")
    made = Probe(lambda: app, rate=RATE, run_id="pt" + uuid.uuid4().hex[:10])
    yield made
    with contextlib.suppress(RuntimeError):  # a test that failed before stop(): stop it now
        made.stop(settle_s=0, max_wait_s=0)
    probe_root.run(f"DELETE FROM {PROBE_SCHEMA}.probe WHERE run_id = %s", (made.run_id,))


def _wait_for_failures(probe: Probe, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    before = probe.snapshot()["failed"]
    while probe.snapshot()["failed"] == before:
        assert time.monotonic() < deadline, "the probe never saw a failure"
        time.sleep(0.01)


def _report(result: ProbeResult) -> None:
    print(f"\n{result.run_id}: {result.acknowledged} acknowledged of {result.attempts} in {result.duration_s} s, "
          f"{result.failed} failed, max gap {result.max_gap_ms} ms, gaps {result.gaps_over_100ms}, "
          f"errors {[(e['during'], e['code'], e['count']) for e in result.errors]}")


def test_probe_acknowledges_rate_times_seconds_with_small_gaps_and_loses_nothing(probe, probe_root):
    probe.start()
    time.sleep(1.5)
    result = Probe.verify(probe.stop(settle_s=0.5), probe_root)
    _report(result)
    expected = RATE * result.duration_s
    assert abs(result.acknowledged - expected) <= 0.1 * expected + 3
    assert result.failed == 0 and result.ended_acknowledging
    assert result.max_gap_ms < 200
    assert result.lost == [] and result.lost_count == 0
    assert result.as_dict()["acknowledged_last_seq"] == result.attempts


def test_verify_names_an_acknowledged_write_missing_from_the_new_primary(probe, probe_root):
    probe.start()
    time.sleep(0.3)
    result = probe.stop(settle_s=0.2)
    victim = result.acknowledged_seqs[3]
    probe_root.run(f"DELETE FROM {PROBE_SCHEMA}.probe WHERE run_id = %s AND seq = %s", (probe.run_id, victim))
    checked = Probe.verify(result, probe_root)
    assert checked.lost == [victim] and checked.lost_count == 1


def test_probe_measures_an_outage_while_haproxy_points_at_a_closed_port(sandbox, probe, probe_root):
    haproxy, closed = sandbox.haproxy, procs.free_port()
    probe.start()
    time.sleep(0.5)
    try:
        assert "changed" in haproxy.command(f"set server {BACKEND}/{SERVER} addr 127.0.0.1 port {closed}")
        haproxy.command(f"shutdown sessions server {BACKEND}/{SERVER}")
        time.sleep(0.8)
    finally:
        haproxy.command(f"set server {BACKEND}/{SERVER} addr 127.0.0.1 port {sandbox.ports['source']}")
    result = Probe.verify(probe.stop(settle_s=0.5), probe_root)
    _report(result)
    assert 700 <= result.max_gap_ms < 3000
    assert result.failed > 0 and result.errors and result.ended_acknowledging
    assert result.lost_count == 0


def test_probe_measures_the_lockout_of_an_account_that_loses_its_insert_grant(sandbox, probe, probe_root):
    probe.start()
    time.sleep(0.5)
    try:
        probe_root.run(f"REVOKE INSERT ON {PROBE_SCHEMA}.* FROM '{APP}'@'%'")
        _wait_for_failures(probe)
        time.sleep(0.8)
    finally:
        grant_probe(probe_root, APP, "%")
    result = Probe.verify(probe.stop(settle_s=0.5), probe_root)
    _report(result)
    assert result.max_gap_ms >= 700
    assert 1142 in {e["code"] for e in result.errors}
    assert result.ended_acknowledging and result.lost_count == 0


def test_stop_keeps_writing_until_writes_succeed_again_after_a_lockout_at_the_very_end(probe, probe_root):
    probe.start()
    time.sleep(0.3)
    stopped: list[ProbeResult] = []
    try:
        probe_root.run(f"REVOKE INSERT ON {PROBE_SCHEMA}.* FROM '{APP}'@'%'")
        _wait_for_failures(probe)
        stopper = threading.Thread(target=lambda: stopped.append(probe.stop(settle_s=0.5)))
        stopper.start()
        time.sleep(0.5)
    finally:
        grant_probe(probe_root, APP, "%")
    stopper.join(timeout=10)
    result = stopped[0]
    _report(result)
    assert result.ended_acknowledging
    assert result.max_gap_ms >= 400
    assert Probe.verify(result, probe_root).lost_count == 0


def test_a_probe_that_never_recovers_reports_the_whole_lockout_and_not_acknowledging(probe, probe_root):
    probe.start()
    time.sleep(0.2)
    try:
        probe_root.run(f"REVOKE INSERT ON {PROBE_SCHEMA}.* FROM '{APP}'@'%'")
        _wait_for_failures(probe)
        result = probe.stop(settle_s=0.5, max_wait_s=1.0)
    finally:
        grant_probe(probe_root, APP, "%")
    _report(result)
    assert not result.ended_acknowledging
    assert result.max_gap_ms >= 1000
    assert result.max_gap_ended_at == result.ended_at
