"""The checks no server here can be made to fail for real (no MySQL 8 to pair with MariaDB, no full disk,
no missing tools on the sandbox's host, no drifting clock), on hand-made facts."""

from __future__ import annotations

import dataclasses

from migrate.adapters.dialect import detect
from migrate.capabilities.host_inspector import HostFacts
from migrate.checks import cutover, source, target
from migrate.checks.facts import PlanFacts, SourceFacts, TargetFacts
from migrate.estimates import estimate
from migrate.playbook import parse
from tests.unit.test_playbook import VALID

VARS = {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "server_id": "1", "read_only": "ON",
        "log_slave_updates": "ON", "log_replica_updates": "ON", "gtid_mode": "ON", "sql_mode": "STRICT_TRANS_TABLES",
        "time_zone": "SYSTEM", "system_time_zone": "UTC", "lower_case_table_names": "0",
        "max_allowed_packet": "67108864"}


def facts(src_version="8.0.36", tgt_version="8.0.36", src_vars=None, tgt_vars=None, **changes) -> PlanFacts:
    pb = parse(VALID.replace("kind: rds\n  rds_instance_id: orders-prod", "kind: mysql\n  host: 10.0.0.1"))
    s = SourceFacts(detect(src_version), {**VARS, **(src_vars or {})}, {"ALL PRIVILEGES"}, ["shop"],
                    [{"schema": "shop", "name": "t", "engine": "InnoDB", "est_rows": 10, "bytes": 2_000_000_000}],
                    [], [], {"triggers": [], "routines": [], "views": [], "events": []}, ["utf8mb4_0900_ai_ci"],
                    [], {}, None, [], [], None, 0.0, 1000.0)
    t = TargetFacts(detect(tgt_version), {**VARS, "server_id": "2", **(tgt_vars or {})}, [], {"utf8mb4_0900_ai_ci"},
                    1000.2, privileges={"ALL PRIVILEGES", "GRANT OPTION"})
    host = HostFacts(True, free_bytes=10**12, disk_path="/var/lib/mysql",
                     tools={"mydumper": "/usr/bin/mydumper", "myloader": "/usr/bin/myloader"}, clock_offset_s=0.0)
    base = PlanFacts(pb, s, None, t, None, host, None, (True, "ok"), ("pass", "ok", None),
                     extra={"replication_password_length": 24})
    return dataclasses.replace(base, **changes)


def by_id(checks) -> dict:
    return {c.id: c for c in checks}


def run_target(f: PlanFacts) -> dict:
    est = estimate(f.source.data_bytes, 0.0, f.pb.estimates, 10)
    return by_id(target.checks(f, est, allow_nonempty=False))


def test_a_mariadb_target_for_a_mysql_source_fails():
    assert run_target(facts(tgt_version="10.11.6-MariaDB"))["target.version"].status == "fail"


def test_an_older_target_fails_and_a_newer_major_warns():
    assert run_target(facts(src_version="8.4.3", tgt_version="8.0.36"))["target.version"].status == "fail"
    assert run_target(facts(src_version="8.0.36", tgt_version="8.4.3"))["target.version"].status == "warn"


def test_a_collation_unknown_on_the_target_fails():
    f = facts()
    f.target.collations.clear()
    assert run_target(f)["target.collations"].status == "fail"


def test_too_little_disk_for_one_and_a_half_times_the_data_fails():
    f = facts(host=HostFacts(True, free_bytes=2_500_000_000, disk_path="/var/lib/mysql",
                             tools={"mydumper": "x", "myloader": "x"}))
    c = run_target(f)["target.disk"]
    assert c.status == "fail" and "needs 3.0 GB" in c.evidence


def test_missing_tools_fail_and_mysqldump_alone_warns():
    assert run_target(facts(host=HostFacts(True, free_bytes=10**12, tools={})))["target.tools"].status == "fail"
    only_dump = HostFacts(True, free_bytes=10**12, tools={"mysqldump": "x", "mysql": "x"})
    assert run_target(facts(host=only_dump))["target.tools"].status == "warn"


def test_clock_skew_over_a_second_warns():
    f = facts()
    f.target.unix_time = f.source.unix_time + 3.5
    assert run_target(f)["network.clock_skew"].status == "warn"


def test_different_lower_case_table_names_fails():
    c = run_target(facts(tgt_vars={"lower_case_table_names": "1"}))["target.settings"]
    assert c.status == "fail" and "lower_case_table_names" in c.evidence


def test_mysql_without_gtids_warns_and_replicates_by_position():
    f = facts(src_vars={"gtid_mode": "OFF"})
    est = estimate(0, 0.0, f.pb.estimates, 10)
    assert by_id(source.checks(f, est))["source.gtid"].status == "warn"


def test_mysql_56_is_not_supported():
    f = facts(src_version="5.6.51")
    est = estimate(0, 0.0, f.pb.estimates, 10)
    assert by_id(source.checks(f, est))["source.version"].status == "fail"


def test_mysql_without_mydumper_and_without_reload_cannot_seed():
    f = facts(host=HostFacts(True, free_bytes=10**12, tools={"mysqldump": "x", "mysql": "x"}))
    f.source.privileges.clear()
    assert by_id(cutover.checks(f))["seed.method"].status == "fail"


def test_estimates_scale_with_data_and_write_rate():
    pb = facts().pb
    quiet = estimate(1_560_000_000, 0.0, pb.estimates, 10)
    assert round(quiet.seed_s) == 105 and quiet.catch_up_s == 0
    busy = estimate(1_560_000_000, 1_000_000, pb.estimates, 10)
    assert busy.catch_up_s > 0 and busy.retention_needed_h >= 1
    assert estimate(0, 10_000_000, pb.estimates, 10).catch_up_s is None


def test_a_mysql_target_applying_on_one_thread_warns_and_four_workers_pass():
    one = run_target(facts(tgt_vars={"replica_parallel_workers": "1", "slave_parallel_workers": "1"}))
    assert one["target.parallel_apply"].status == "warn"
    assert "replica_parallel_workers=1" in one["target.parallel_apply"].evidence
    assert "replica_parallel_workers=4" in one["target.parallel_apply"].fix
    assert run_target(facts(tgt_vars={"replica_parallel_workers": "4"}))["target.parallel_apply"].status == "pass"


def test_mysql_gtid_history_and_position_compared_as_intervals():
    from migrate.checks import link

    u1, u2 = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4f22ab58-71ca-11e1-9e33-c80aa9429563"
    s_vars = {"server_id": "1"}
    f = facts(src_vars=s_vars, extra={"replication_password_length": 24, "source_for_target": "10.0.0.1:3306"})
    f.source.gtid = {"executed": f"{u1}:1-3000000000", "purged": f"{u1}:1-1000"}
    f.target.gtid = {"executed": f"{u1}:1-2000000000:2000000005", "purged": ""}
    out = by_id(link.checks(f))
    assert out["replication.gtid_history"].status == "pass"
    assert out["replication.position"].status == "pass"  # not replicating yet: start takes the position
    f.target.replicates_from = ["10.0.0.1:3306 (running)"]
    f.target.gtid = {"executed": f"{u1}:1-500:900-2000,{u2}:1-7"}
    out = by_id(link.checks(f))
    assert out["replication.gtid_history"].status == "warn" and f"{u2}:1-7" in out["replication.gtid_history"].evidence
    assert out["replication.position"].status == "fail" and f"{u1}:501-899" in out["replication.position"].evidence
    assert link._minus([(1, 10)], [(3, 4), (6, 6), (9, 20)]) == [(1, 2), (5, 5), (7, 8)]


def test_the_rehearsal_check_wants_a_section_a_working_repoint_and_the_backup_tool_and_names_the_last_drill():
    assert by_id(cutover.checks(facts()))["rehearsal"].status == "warn"  # no rehearsal: section
    pb = parse(VALID + "rehearsal: {host: 10.0.1.30, user: root, password_env: P, "
                       "repoint: {method: command, command: {run: ./drill.sh}}}\n")
    with_section = facts(pb=pb, extra={"rehearsal": {"repoint": (True, "drill.sh is /opt/drill.sh"), "latest": None}})
    c = by_id(cutover.checks(with_section))["rehearsal"]
    assert c.status == "fail" and "xtrabackup" in c.evidence  # clone_target needs it on the target host
    host = dataclasses.replace(with_section.host, tools={"xtrabackup": "/usr/bin/xtrabackup"})
    c = by_id(cutover.checks(dataclasses.replace(with_section, host=host)))["rehearsal"]
    assert c.status == "pass" and "not rehearsed yet" in c.evidence
    rehearsed = {"repoint": (True, "ok"), "latest": {"rehearsal_run": "rehearse-r1", "rehearsed_at": "t",
                                                      "write_downtime_ms": 41.6}}
    c = by_id(cutover.checks(dataclasses.replace(with_section, host=host, extra={"rehearsal": rehearsed})))["rehearsal"]
    assert "rehearse-r1" in c.evidence and "42 ms" in c.evidence
    broken = {"repoint": (False, "no such socket"), "latest": None}
    assert by_id(cutover.checks(dataclasses.replace(with_section, extra={"rehearsal": broken})))["rehearsal"].status \
        == "fail"


def test_binlog_retention_is_read_one_way_for_plan_status_and_start():
    """One reading of the retention serves the plan's check, status's "left" and start's raise on RDS."""
    from migrate.capabilities.inspector import expire_seconds, rds_retention_hours
    assert rds_retention_hours({"binlog retention hours": "NULL"}) is None
    assert rds_retention_hours(None) is None and rds_retention_hours({"binlog retention hours": "36"}) == 36
    assert expire_seconds({"binlog_expire_logs_seconds": "0", "expire_logs_days": "0"}) is None
    assert expire_seconds({"binlog_expire_logs_seconds": "7200", "expire_logs_days": "10"}) == 7200
    assert expire_seconds({"expire_logs_days": "0.5"}) == 43200
    f = facts(src_vars={"binlog_expire_logs_seconds": "1800"})
    est = estimate(f.source.data_bytes, 0.0, f.pb.estimates, 10)
    short = by_id(source.checks(f, est))["source.binlog_retention"]
    assert short.status == "fail" and "expire after 0.5 h" in short.evidence, short
    rds = dataclasses.replace(f, source=dataclasses.replace(f.source, rds_configuration={"binlog retention hours": "NULL"}))
    rds = dataclasses.replace(rds, pb=parse(VALID))
    assert by_id(source.checks(rds, est))["source.binlog_retention"].status == "fail"


def test_the_heartbeat_event_needs_the_source_scheduler_and_one_left_running_without_it_warns():
    from migrate.checks import cutover as cutover_checks

    def heartbeat_check(event_on: bool, scheduler_on: bool, status: str | None, running: bool = True):
        f = facts(extra={"heartbeat": (running, "`event _migrate.heartbeat_event` writes it every 0.5 s",
                                       {"scheduler_on": scheduler_on, "status": status})})
        if event_on:
            f = dataclasses.replace(f, pb=f.pb.model_copy(update={"heartbeat": f.pb.heartbeat.model_copy(
                update={"event": True})}))
        return by_id(cutover_checks.checks(f))["cutover.heartbeat"]

    off = heartbeat_check(True, False, None, running=False)
    assert off.status == "fail" and "event scheduler is off" in off.evidence and "event_scheduler = ON" in off.fix
    assert heartbeat_check(True, True, "ENABLED").status == "pass"
    left = heartbeat_check(False, True, "ENABLED")
    assert left.status == "warn" and "heartbeat.event is off" in left.evidence and "migrate start" in left.fix
    assert heartbeat_check(False, False, "DISABLED").status == "pass"
