"""The run's report says what each step did and the write downtime with how it was measured."""

from __future__ import annotations

import json
import stat

import pytest

from migrate.capabilities.report import load_report, resumed_gap, summary, write_downtime, write_report
from migrate.errors import BadInput

RUN = {"workflow": "cutover", "run_id": "a1b2c3d4e5f6", "status": "done", "duration_s": 12.345,
       "steps": [{"name": "block_writes", "status": "done", "duration_s": 0.12,
                  "message": "revoked app_rw's writes and killed its 3 sessions"},
                 {"name": "repoint", "status": "done", "duration_s": 0.05,
                  "message": "HAProxy mysql/db now points at 10.0.1.20:3306 | was the RDS endpoint"}]}


def probe(**over):
    made = {"run_id": "p1b2c3d4e5f6", "rate": 50.0, "started_at": "2025-01-01T10:00:00.000Z",
            "ended_at": "2025-01-01T10:00:30.000Z", "duration_s": 30.0, "attempts": 1300, "acknowledged": 1234,
            "failed": 66, "max_gap_ms": 182.4, "max_gap_started_at": "2025-01-01T10:00:10.100Z",
            "max_gap_ended_at": "2025-01-01T10:00:10.282Z",
            "gaps_over_100ms": [{"ms": 182.4, "from": "2025-01-01T10:00:10.100Z", "to": "2025-01-01T10:00:10.282Z"}],
            "errors": [{"during": "insert", "code": 1142, "message": "(1142) INSERT command denied", "count": 66,
                        "first_at": "2025-01-01T10:00:10.120Z", "last_at": "2025-01-01T10:00:10.260Z"}],
            "ended_acknowledging": True, "acknowledged_first_seq": 1, "acknowledged_last_seq": 1300,
            "lost": [], "lost_count": 0}
    return made | over


FACTS = {"source_version": "10.11.6-MariaDB-log", "target_version": "10.11.6-MariaDB",
         "final_position": {"gtid": "0-1-4711"}, "carried_over": ["app_rw grants", "3 events enabled"],
         "repl_password": "hunter22"}


def test_report_files_are_private_and_hold_the_measured_downtime(tmp_path):
    json_path, md_path = write_report(tmp_path / "run", workflow="cutover", run=RUN, probe=probe(), facts=FACTS)
    for path in (json_path, md_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    report = json.loads(json_path.read_text())
    assert report["run_id"] == "a1b2c3d4e5f6" and report["status"] == "done" and report["generated_at"]
    assert [s["name"] for s in report["steps"]] == ["block_writes", "repoint"]
    assert report["write_downtime"] == {
        "measured": True, "longest_gap_ms": 182.4, "from": "2025-01-01T10:00:10.100Z",
        "to": "2025-01-01T10:00:10.282Z", "failed_attempts": 66, "acknowledged": 1234,
        "lost_acknowledged_writes": 0, "every_acknowledged_write_on_new_primary": True, "probe_rate": 50.0,
        "ended_acknowledging": True, "resumed_from_block": None, "writes_blocked": True}
    assert report["probe"]["attempts"] == 1300
    assert report["facts"]["final_position"] == {"gtid": "0-1-4711"}


def test_a_secret_in_the_facts_never_reaches_the_report(tmp_path):
    json_path, md_path = write_report(tmp_path, workflow="cutover", run=RUN, probe=probe(), facts=FACTS)
    for path in (json_path, md_path):
        assert "hunter22" not in path.read_text()


def test_markdown_report_has_steps_table_and_says_how_downtime_was_measured(tmp_path):
    _, md_path = write_report(tmp_path, workflow="cutover", run=RUN, probe=probe(), facts=FACTS)
    md = md_path.read_text()
    assert md.startswith("# migrate cutover: done\n")
    assert "| block_writes | done | 0.12 | revoked app_rw's writes and killed its 3 sessions |" in md
    assert "was the RDS endpoint" in md and "10.0.1.20:3306 \\| was" in md
    assert "**182 ms**" in md and "every 20.0 ms (50/s)" in md and "acknowledged" in md
    assert "application's endpoint" in md
    assert "None: all 1,234 acknowledged writes are on the new primary." in md
    assert "| 66 | insert | 1142 | (1142) INSERT command denied |" in md
    assert "| source_version | 10.11.6-MariaDB-log |" in md
    assert '| final_position | {"gtid": "0-1-4711"} |' in md


def test_summary_gives_downtime_probe_rate_lost_writes_and_where_the_report_is(tmp_path):
    _, md_path = write_report(tmp_path, workflow="cutover", run=RUN, probe=probe(), facts={})
    text = summary(load_report(tmp_path))
    assert text == ("cutover done in 12.3 s: write downtime 182 ms (longest gap between acknowledged writes, "
                    f"probe at 50/s), 0 of 1,234 acknowledged writes lost; report: {md_path}")


def test_lost_writes_are_shouted_in_the_summary_and_listed_in_the_markdown(tmp_path):
    _, md_path = write_report(tmp_path, workflow="cutover", run=RUN, facts={},
                              probe=probe(lost=[17, 18], lost_count=2))
    report = load_report(tmp_path)
    assert report["write_downtime"]["every_acknowledged_write_on_new_primary"] is False
    assert "2 of 1,234 acknowledged writes LOST" in summary(report)
    assert "**2 of 1,234 acknowledged writes are missing on the new primary**" in md_path.read_text()
    assert "seq 17, 18" in md_path.read_text()


def test_a_probe_that_never_recovered_reports_at_least_its_gap(tmp_path):
    write_report(tmp_path, workflow="cutover", run=RUN, facts={},
                 probe=probe(ended_acknowledging=False, max_gap_ms=30012.0, lost=None, lost_count=None))
    report = load_report(tmp_path)
    text = summary(report)
    assert "write downtime at least 30,012 ms" in text
    assert "1,234 acknowledged writes (not checked on the new primary)" in text
    assert "writes were still failing when the probe stopped" in text
    assert report["write_downtime"]["every_acknowledged_write_on_new_primary"] is None
    md = (tmp_path / "report.md").read_text()
    assert "the probe ended while writes still failed" in md and "Not checked" in md


def test_without_a_probe_the_downtime_is_not_measured_rather_than_zero(tmp_path):
    json_path, md_path = write_report(tmp_path, workflow="rehearse", run=RUN | {"status": "rolled_back"},
                                      probe=None, facts={})
    report = json.loads(json_path.read_text())
    assert report["write_downtime"]["measured"] is False and report["write_downtime"]["longest_gap_ms"] is None
    assert "write downtime not measured" in summary(report)
    assert "Not measured: no write probe ran" in md_path.read_text()


def test_a_second_report_becomes_the_latest_and_each_run_keeps_its_own(tmp_path):
    write_report(tmp_path, workflow="cutover", run=RUN, probe=probe(), facts={})
    write_report(tmp_path, workflow="cutover", run=RUN | {"run_id": "ffffffffffff"}, probe=None, facts={})
    assert load_report(tmp_path)["run_id"] == "ffffffffffff"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md", "runs"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["cutover-a1b2c3d4e5f6", "cutover-ffffffffffff"]
    assert load_report(tmp_path / "runs" / "cutover-a1b2c3d4e5f6")["run_id"] == "a1b2c3d4e5f6"


def test_a_report_that_is_not_the_latest_leaves_the_latest_alone(tmp_path):
    write_report(tmp_path, workflow="cutover", run=RUN, probe=probe(), facts={})
    write_report(tmp_path, workflow="cutover", run=RUN | {"run_id": "ffffffffffff", "status": "refused"},
                 probe=None, facts={}, latest=False)
    assert load_report(tmp_path)["run_id"] == "a1b2c3d4e5f6"
    assert load_report(tmp_path / "runs" / "cutover-ffffffffffff")["status"] == "refused"


def test_a_resumed_run_counts_the_gap_from_the_earlier_block():
    gap = resumed_gap(blocked_at=1000.0, repointed_at=None, run_started_at=1010.0, first_ack_at=1016.5)
    assert gap["ms"] == 16500.0 and "this run's probe" in gap["how"]
    wd = write_downtime(probe(), gap)
    assert wd["longest_gap_ms"] == 16500.0 and wd["from"] == gap["from"]
    earlier_repoint = resumed_gap(blocked_at=1000.0, repointed_at=1000.3, run_started_at=1010.0, first_ack_at=1010.1)
    assert earlier_repoint["ms"] == 300.0 and "at least" in earlier_repoint["how"]
    assert resumed_gap(blocked_at=1011.0, repointed_at=None, run_started_at=1010.0, first_ack_at=1012.0) is None


def test_asking_for_a_report_before_any_run_made_one_is_bad_input(tmp_path):
    with pytest.raises(BadInput) as exc:
        load_report(tmp_path)
    assert "no report yet" in str(exc.value) and "migrate cutover" in str(exc.value)


def test_every_run_keeps_its_report_and_any_one_can_be_shown(tmp_path):
    from migrate.capabilities.report import list_runs

    run_dir = tmp_path / "run"
    write_report(run_dir, workflow="start", run={**RUN, "run_id": "s1"}, probe=None, facts={})
    write_report(run_dir, workflow="cutover", run={**RUN, "run_id": "c1"}, probe=probe(), facts=FACTS)
    runs = list_runs(run_dir)
    assert [r["run"] for r in runs] == ["start-s1", "cutover-c1"]
    assert runs[1]["write_downtime_ms"] is not None and runs[0]["write_downtime_ms"] is None
    assert load_report(run_dir)["run_id"] == "c1"  # the latest
    chosen = load_report(run_dir, "s1")
    assert chosen["workflow"] == "start" and chosen["files"]["json"].endswith("runs/start-s1/report.json")
    with pytest.raises(BadInput, match="no run 'nope'") as exc:
        load_report(run_dir, "nope")
    assert "start-s1, cutover-c1" in exc.value.hint


def test_a_run_that_never_blocked_writes_says_so_and_keeps_no_earlier_runs_picture(tmp_path):
    drawn = RUN | {"steps": [s | {"started_at": "2025-01-01T10:00:10.000Z"} for s in RUN["steps"]]}
    write_report(tmp_path, workflow="cutover", run=drawn, probe=probe(), facts={},
                 probe_times=([1735725610.0, 1735725611.0], []))
    assert load_report(tmp_path)["files"]["timeline"]
    refused = RUN | {"run_id": "ffffffffffff", "status": "refused"}  # no step began: nothing to draw
    write_report(tmp_path, workflow="cutover", run=refused, probe=probe(max_gap_ms=25.0), facts={}, blocked=False)
    latest = load_report(tmp_path)
    assert "timeline" not in latest["files"] and not (tmp_path / "timeline.png").exists()
    assert latest["write_downtime"]["writes_blocked"] is False
    assert "writes were never blocked" in summary(latest) and "write downtime 25" not in summary(latest)
    assert "no write downtime" in (tmp_path / "report.md").read_text().replace("there was no write", "no write")
    from migrate.capabilities.report import list_runs

    assert [r["write_downtime_ms"] for r in list_runs(tmp_path)] == [182.4, None]
    assert stat.S_IMODE((tmp_path / "runs").stat().st_mode) == 0o700
