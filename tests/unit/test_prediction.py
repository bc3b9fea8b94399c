"""The rehearsal's prediction: the drill's measured gap plus each part it could not time, each with its source;
the cutover's report puts it beside the measurement; `plan` uses the latest rehearsal's figure."""

from __future__ import annotations

import pytest

from migrate.capabilities import prediction, report
from migrate.capabilities.seed.common import SeedError
from migrate.capabilities.seed.physical import parse_slave_info
from migrate.estimates import CUTOVER_DOWNTIME_MS, estimate
from migrate.playbook import Estimates

BLOCK = {"grants": 1, "revoke_ms": 2.0, "sessions": 3, "kill_ms": 6.0}


def predict(**over):
    args = {"drill_gap_ms": 40.0, "block": BLOCK, "app_grants": 4, "app_sessions": 3, "drill_repoint": "haproxy",
            "cutover_repoint": "haproxy", "cutover_block": "revoke_and_kill"} | over
    return prediction.predict(**args)


def test_what_the_drill_timed_for_real_adds_nothing_and_more_grants_scale_the_revoke():
    p = predict()
    terms = {t["term"].split(" (")[0]: t for t in p["terms"]}
    assert terms["killing the application's sessions"]["ms"] == 0.0
    assert "timed for real" in terms["killing the application's sessions"]["source"]
    assert terms["revoking the write privileges of the application's grants"]["ms"] == 6.0  # 3 more at 2 ms each
    assert terms["the repoint"]["ms"] == 0.0
    assert p["write_downtime_ms"] == 46.0 and p["drill_gap_ms"] == 40.0


def test_more_sessions_than_the_drill_killed_are_scaled_and_another_repoint_method_is_named_not_timed():
    p = predict(app_sessions=13, cutover_repoint="command")
    kill = next(t for t in p["terms"] if t["term"].startswith("killing"))
    assert kill["ms"] == 20.0 and "scaled to 13" in kill["source"]
    repoint = next(t for t in p["terms"] if t["term"].startswith("the repoint"))
    assert repoint["ms"] is None and "drill repointed with haproxy" in repoint["source"]
    assert "the repoint (command)" in p["untimed"]
    assert p["write_downtime_ms"] == 40.0 + 6.0 + 20.0  # the untimed term adds no invented figure


def test_uncounted_grants_and_other_block_methods_are_named_as_untimed():
    assert any("grants" in t for t in predict(app_grants=None)["untimed"])
    p = predict(app_grants=None, cutover_block="read_only")  # no grant is revoked: no revoke term at all
    assert not any("grant" in t["term"] for t in p["terms"]) and any("read_only" in t for t in p["untimed"])
    assert any("transactions" in t for t in p["untimed"])  # always: idle drill sessions roll nothing back


def test_compare_gives_the_error_and_the_goal_of_25_percent_or_100_ms():
    near = prediction.compare({"write_downtime_ms": 46.0}, 30.0)
    assert near["error_ms"] == 16.0 and near["within_goal"] is True  # 16 ms is more than 25 %, less than 100 ms
    far = prediction.compare({"write_downtime_ms": 900.0}, 500.0)
    assert far["error_ms"] == 400.0 and far["error_pct"] == 80.0 and far["within_goal"] is False
    assert prediction.compare({"write_downtime_ms": 46.0}, None)["measured_ms"] is None


def test_the_latest_finished_rehearsal_gives_the_prediction_and_plan_uses_it(tmp_path):
    run = {"run_id": "r1", "status": "done", "duration_s": 9.0, "steps": []}
    report.write_report(tmp_path, workflow="rehearse", run=run, probe=None, facts={},
                        prediction=predict())
    report.write_report(tmp_path, workflow="rehearse", run=run | {"run_id": "r2", "status": "rolled_back"},
                        probe=None, facts={})
    latest = report.latest_prediction(tmp_path)
    assert latest["write_downtime_ms"] == 46.0 and latest["rehearsal_run"] == "rehearse-r1"
    est = estimate(0, 0.0, Estimates(), 3, latest)
    assert est.cutover_downtime_ms == 46.0 and "rehearsal rehearse-r1" in est.figures
    assert estimate(0, 0.0, Estimates(cutover_downtime_ms=75), 3, latest).cutover_downtime_ms == 75
    assert estimate(0, 0.0, Estimates(), 3, None).cutover_downtime_ms == CUTOVER_DOWNTIME_MS
    assert report.latest_prediction(tmp_path / "nothing") is None


def test_the_markdown_shows_prediction_beside_measurement_with_each_term(tmp_path):
    run = {"run_id": "c1", "status": "done", "duration_s": 3.0, "steps": []}
    compared = prediction.compare({**predict(), "rehearsal_run": "rehearse-r1", "rehearsed_at": "x"}, 30.0)
    json_path, md_path = report.write_report(tmp_path, workflow="cutover", run=run, probe=None, facts={},
                                             prediction=compared)
    md = md_path.read_text()
    assert "**46 ms predicted**" in md and "**30 ms measured**" in md and "error +16 ms" in md
    assert "rehearse-r1" in md and "not timed" in md and "the drill's measured write gap | 40" in md
    assert "predicted write downtime 46 ms (rehearsal rehearse-r1), measured 30 ms" in report.summary(
        report.load_report(json_path.parent))


def test_slave_info_of_a_gtid_and_of_a_file_position_replica():
    mariadb = "SET GLOBAL gtid_slave_pos = '0-1-53';\nCHANGE MASTER TO master_use_gtid = slave_pos;\n"
    assert parse_slave_info(mariadb).gtid_set == "0-1-53"
    by_file = "CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000042', MASTER_LOG_POS=1337;\n"
    pos = parse_slave_info(by_file)
    assert (pos.file, pos.pos, pos.gtid_set) == ("mysql-bin.000042", 1337, None)
    mysql = "SET GLOBAL gtid_purged='3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77';\nCHANGE MASTER TO MASTER_AUTO_POSITION=1;"
    assert parse_slave_info(mysql).gtid_set == "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-77"
    with pytest.raises(SeedError, match="no replication coordinates"):
        parse_slave_info("")

