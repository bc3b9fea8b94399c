"""The heartbeat's arithmetic, on rows as the servers return them: the estimate and its bound, the clock skew
corrected, a stale writer saying nothing rather than 0. (On real servers: tests/integration/test_lag.py.)"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from migrate.capabilities.heartbeat import estimate

T0 = datetime(2026, 12, 3, 12, 0, 0)


def row(ts_s: float, now_s: float, interval_ms: int = 500) -> dict:
    return {"ts": T0 + timedelta(seconds=ts_s), "now": T0 + timedelta(seconds=now_s), "interval_ms": interval_ms,
            "writer": "migrate heartbeat"}


def test_a_replica_behind_reads_the_middle_of_the_interval_it_stopped_in():
    lag = estimate(row(10.0, 10.2), row(4.0, 10.2), skew=0.0, skew_error=0.001)
    assert lag.lag_s == pytest.approx(5.95) and lag.error_s == pytest.approx(0.251)
    assert lag.upper_s == pytest.approx(6.201) and lag.fresh


def test_the_replicas_clock_ahead_by_two_seconds_is_taken_off():
    # The replica's `now` reads 2 s ahead: without the correction it would look 2 s further behind.
    lag = estimate(row(10.0, 10.2), row(4.0, 12.2), skew=2.0, skew_error=0.002)
    assert lag.lag_s == pytest.approx(5.95) and lag.clock_skew_s == 2.0


def test_a_replica_with_the_newest_row_is_caught_up_within_the_rows_age():
    lag = estimate(row(10.0, 10.3), row(10.0, 10.3), skew=0.0, skew_error=0.0)
    assert lag.lag_s == 0.0 and lag.error_s == pytest.approx(0.3)


def test_without_a_writer_the_heartbeat_says_nothing_rather_than_zero():
    stale = estimate(row(10.0, 11.6), row(10.0, 11.6), skew=0.0, skew_error=0.0)  # > 2 intervals + 0.5 s
    assert stale.lag_s is None and not stale.fresh and "no writer runs" in stale.said
    assert estimate(None, None, 0.0, 0.0).said.startswith("no heartbeat has been written")
    assert estimate(row(10.0, 10.2), None, 0.0, 0.0).said == "the replica has no heartbeat from this primary yet"


def test_a_lag_is_never_negative():
    assert estimate(row(10.0, 10.2), row(9.9, 10.0), skew=0.0, skew_error=0.0).lag_s == 0.0


def test_the_source_event_writes_at_the_interval_within_its_once_a_second_schedule():
    from migrate.capabilities.heartbeat_event import body, cadence
    assert cadence(0.5) == (1, 2, 0.5) and cadence(2.4) == (2, 1, 2.0)
    every, writes, apart = cadence(0.3)
    assert (every, writes) == (1, 3) and apart == pytest.approx(1 / 3)
    # MySQL and MariaDB alike: literals only (the server id is the source's, also under statement replication)
    assert body(1234, 0.5) == (
        "BEGIN\n"
        "  REPLACE INTO _migrate.heartbeat (server_id, ts, interval_ms, writer) VALUES (1234, UTC_TIMESTAMP(6), 500, "
        "'event _migrate.heartbeat_event');\n"
        "  DO SLEEP(0.500000);\n"
        "  REPLACE INTO _migrate.heartbeat (server_id, ts, interval_ms, writer) VALUES (1234, UTC_TIMESTAMP(6), 500, "
        "'event _migrate.heartbeat_event');\n"
        "END")
    assert "SLEEP" not in body(7, 5) and ", 5000, " in body(7, 5)


def test_a_rehearsals_seed_leaves_the_sources_heartbeat_event_alone():
    from migrate.capabilities.migration import Migration
    from migrate.playbook import parse
    from migrate.steps import start
    from tests.unit.test_playbook import VALID

    m = Migration(parse(VALID))
    assert start.steps(m)[-1].name == "heartbeat_event"
    assert "heartbeat_event" not in [s.name for s in start.steps(m, heartbeat_event=False)]
