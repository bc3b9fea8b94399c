"""`migrate verify` on real servers, through the real command, as the sandbox's RDS-like master user: no false
alarm under a write load, every kind of difference named with its table and key range, a table without a key
compared whole, a killed run resumed without redoing its chunks, the cutover's require_verify gate, and
pt-table-checksum refused where verify works.

The tests share one sandbox (the target replicating from the source). Each leaves it as it found it: the rows
a test makes differ live in tables of its own, created on the source (so the target gets them through
replication) and dropped there at the end.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

from migrate.adapters.db import Session
from migrate.capabilities import inspector, replication
from tests.helpers import ROOT, open_session, spawn_migrate, wait_for
from tests.switching import Load, app_endpoint, fast_playbook, journal, migrate, phase_of


@pytest.fixture
def sb(started_module_sandbox):
    return started_module_sandbox.get()


def verify(sb, *args: str, expect: int | None = 0, playbook=None) -> dict:
    try:
        result = migrate("verify", "-p", str(playbook or sb.playbook_path), "--json", *args, expect=expect, timeout=240)
    except subprocess.TimeoutExpired as exc:  # say what it was doing (throttled, waiting...), not only that it hung
        said = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        raise AssertionError(f"migrate verify did not finish in 240 s; its log ends:\n{said[-4000:]}") from None
    return json.loads(result.stdout)


def caught_up(sb) -> None:
    """The target has applied everything the source has logged so far."""
    with sb.source.root() as s, sb.target.root() as t:
        assert replication.wait_applied(t, inspector.binlog_position(s), 30) == "reached"


@contextmanager
def own_table(sb, name: str, ddl: str, rows: list[tuple]) -> Session:
    """`shop.<name>` made on the source (replicated to the target), dropped there at the end (and so on the target,
    divergence included). Yields a root session on the target that writes behind replication's back."""
    with sb.source.root() as s:
        s.run(f"CREATE TABLE shop.{name} {ddl}")
        if rows:
            marks = ", ".join(["%s"] * len(rows[0]))
            s.run_many(f"INSERT INTO shop.{name} VALUES ({marks})", rows)
    caught_up(sb)
    try:
        with sb.target.root() as t:
            t.run("SET SESSION sql_log_bin = 0")  # root bypasses read_only; nothing reaches a binlog
            yield t
    finally:
        with sb.source.root() as s:
            s.run(f"DROP TABLE IF EXISTS shop.{name}")
        caught_up(sb)


def chunk_events(sb) -> list[dict]:
    return [e for e in journal(sb) if e["event"] == "verify_chunk"]


@contextmanager
def hot_rows(sb, ids: range, rate: float = 200):
    """The application rewriting a few customers `rate` times a second (a busy row in every pass)."""
    stop, counts = threading.Event(), [0]

    def loop() -> None:
        with open_session(app_endpoint(sb)) as app:
            while not stop.wait(1 / rate):
                app.run("UPDATE shop.customers SET name = CONCAT('Customer ', id, ' v', %s) WHERE id BETWEEN %s AND %s",
                        (counts[0], ids.start, ids.stop - 1))
                counts[0] += 1

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield counts
    finally:
        stop.set()
        worker.join(10)


def test_verify_reports_no_difference_under_a_write_load_five_runs_in_a_row(sb):
    with Load(sb, rate=150) as load, hot_rows(sb, range(1, 6)) as updates:
        results = [verify(sb) for _ in range(5)]
    assert load.result.acked_order_ids and updates[0] > 100, "the application wrote while verify ran"
    for r in results:
        assert r["clean"] and r["differences"] == [] and r["unverified"] == [], r
        assert {t["table"] for t in r["tables"]} == {"shop.customers", "shop.orders", "shop.order_lines"}
        assert r["primary"] == "source" and r["replica"] == "target" and r["full"]
    assert results[-1]["totals"]["rows"] > results[0]["totals"]["rows"], "the orders written were compared too"
    assert sum(r["totals"]["rechecked_chunks"] for r in results), "busy chunks were re-checked, not reported"


def test_a_differing_row_the_application_keeps_locked_is_reported_unconfirmed_never_equal(sb):
    ddl = "(id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB"
    with own_table(sb, "verify_locked", ddl, [(i, i) for i in range(1, 101)]) as target:
        target.run("UPDATE shop.verify_locked SET v = -1 WHERE id = 42")
        with sb.source.root() as app:  # a transaction that holds the row for the whole verify
            app.run("START TRANSACTION")
            app.run("SELECT v FROM shop.verify_locked WHERE id = 42 FOR UPDATE")
            began = time.monotonic()
            r = verify(sb, "--tables", "shop.verify_locked", expect=1)
            took = time.monotonic() - began
            app.run("ROLLBACK")
        settled = verify(sb, "--tables", "shop.verify_locked", expect=1)
    assert r["differences"] == [] and not r["clean"]
    [u] = r["unverified"]
    assert u["table"] == "shop.verify_locked" and u["rows"] == 1 and "could not be locked" in u["detail"]
    assert took < 30, "verify never waits for the application's locks"
    [d] = settled["differences"]
    assert d["rows"] == [{"key": 42, "kind": "changed"}]


def test_a_changed_a_deleted_and_an_added_row_are_each_named_with_table_and_key_range(sb):
    rows = [(i, "" if i % 10 == 0 else f"n{i}", 1.0000001, bytes([i % 256]) * 40) for i in range(2, 6001, 2)]
    ddl = "(id INT PRIMARY KEY, note VARCHAR(20) NULL, f FLOAT NULL, payload BLOB NULL) ENGINE=InnoDB"
    with own_table(sb, "verify_rows", ddl, rows) as target:
        target.run("UPDATE shop.verify_rows SET note = NULL WHERE id = 10")  # '' -> NULL
        target.run("UPDATE shop.verify_rows SET f = 1.0000002 WHERE id = 20")  # one FLOAT step away
        target.run("UPDATE shop.verify_rows SET payload = CONCAT(payload, 'x') WHERE id = 30")
        target.run("DELETE FROM shop.verify_rows WHERE id = 1500")
        target.run("INSERT INTO shop.verify_rows VALUES (3001, 'added', NULL, NULL), (100001, 'beyond', 1, NULL)")
        r = verify(sb, expect=1)
        said = migrate("verify", "-p", str(sb.playbook_path), expect=1).stdout
    assert not r["clean"]
    found = {row["key"]: (row["kind"], d) for d in r["differences"] for row in d["rows"]}
    assert {k: kind for k, (kind, _) in found.items()} == {
        10: "changed", 20: "changed", 30: "changed", 1500: "missing_on_replica", 3001: "extra_on_replica",
        100001: "extra_on_replica"}
    for key, (_, d) in found.items():
        assert d["table"] == "shop.verify_rows" and d["kind"] == "rows"
        assert d["first_key"] <= key <= d["last_key"], d
        assert (d["after"] is None or d["after"] < key) and (d["through"] is None or key <= d["through"]), d
    assert {d["table"] for d in r["differences"]} == {"shop.verify_rows"}
    assert "DIFFERS shop.verify_rows" in said and "1500 (missing_on_replica)" in said
    table = next(t for t in r["tables"] if t["table"] == "shop.verify_rows")
    assert table["differing_rows"] == 6 and table["key"] == ["id"]


def test_a_table_without_a_key_is_compared_whole_with_a_warning_and_its_difference_reported(sb):
    rows = [(1, "x"), (1, "x"), (2, None), (3, "")]
    with own_table(sb, "verify_nokey", "(a INT NULL, b VARCHAR(10) NULL) ENGINE=InnoDB", rows) as target, \
            own_table(sb, "verify_ukey", "(code VARCHAR(10) NOT NULL, v INT, UNIQUE KEY uk (code)) ENGINE=InnoDB",
                      [(f"c{i:03d}", i) for i in range(50)]):
        same = verify(sb)
        target.run("DELETE FROM shop.verify_nokey WHERE a = 1 LIMIT 1")  # one of two equal rows
        r = verify(sb, expect=1)
    tables = {t["table"]: t for t in same["tables"]}
    assert tables["shop.verify_nokey"]["compared_whole"] and tables["shop.verify_nokey"]["key"] == []
    assert tables["shop.verify_ukey"]["key"] == ["code"] and not tables["shop.verify_ukey"]["compared_whole"]
    assert any("shop.verify_nokey" in w and "compared whole" in w for w in same["warnings"])
    assert not any("verify_ukey" in w for w in same["warnings"])
    [d] = r["differences"]
    assert d["table"] == "shop.verify_nokey" and d["kind"] == "rows_differ" and d["first_key"] is None
    assert "4 rows on the primary, 3 on the replica" in d["detail"]


def test_a_verify_killed_in_its_middle_resumes_without_redoing_the_chunks_done(sb):
    pb = str(sb.playbook_path)
    proc = spawn_migrate("verify", "-p", pb, "--tables", "shop.order_lines",
                         env={"MIGRATE_TEST_HOLD": "verify:compare_chunks:middle"})
    try:
        wait_for(lambda: any(e["event"] == "held" and e.get("pid") == proc.pid for e in journal(sb)[-5:]), 90,
                 "the verify to hold after its first chunk")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed = [e for e in chunk_events(sb) if e["run_id"] == _run_of(sb, proc.pid)]
    assert killed and killed[-1]["through"] is not None, "killed in the table's middle, after a chunk"
    r = verify(sb, "--tables", "shop.order_lines")
    assert r["clean"] and r["attempt"] == killed[0]["attempt"], "the rerun resumed the killed attempt"
    resumed = [e for e in chunk_events(sb) if e["run_id"] == r["run_id"]]
    assert resumed[0]["after"] == killed[-1]["through"], "it went on after the last chunk done"
    done_before = {json.dumps(e["after"]) for e in killed}
    assert not done_before & {json.dumps(e["after"]) for e in resumed}, "no chunk compared twice"
    assert resumed[-1]["through"] is None
    with sb.source.root() as s:
        lines = s.value("SELECT COUNT(*) FROM shop.order_lines")
    assert r["totals"]["rows"] == lines == sum(e["rows"] for e in killed + resumed)
    started = [e for e in journal(sb) if e["event"] == "run_started" and e["run_id"] == r["run_id"]]
    assert started[0]["resumed"] is True


def _run_of(sb, pid: int) -> str:
    return next(e["run_id"] for e in journal(sb) if e["event"] == "held" and e.get("pid") == pid)


def test_verify_runs_as_the_rds_master_user_where_pt_table_checksum_is_refused(sb, tmp_path):
    import yaml

    source = yaml.safe_load(sb.playbook_path.read_text())["source"]
    assert source["user"] == "admin" and source["kind"] == "rds"
    with sb.master() as master:
        grants = " ".join(next(iter(row.values())) for row in master.run("SHOW GRANTS"))
        before = inspector.binlog_position(master)
    assert "SUPER" not in grants and "BINLOG ADMIN" not in grants and "ALL PRIVILEGES" not in grants

    if shutil.which("pt-table-checksum") is None:
        pytest.skip("pt-table-checksum is not installed (Debian package percona-toolkit; `make deps` installs it)")
    defaults = tmp_path / "master.cnf"  # the password in a 0600 file, not on a command line
    defaults.touch(mode=0o600)
    defaults.write_text(f"[client]\nuser={source['user']}\npassword={sb.secret('source')}\n")
    pt = subprocess.run(["pt-table-checksum", f"F={defaults},h={sb.source.host},P={sb.source.port}",
                         "--databases", "shop", "--no-version-check"], capture_output=True, text=True, timeout=120)
    assert pt.returncode != 0, pt.stdout
    assert "binlog_format" in pt.stdout + pt.stderr and "SUPER" in pt.stdout + pt.stderr

    r = verify(sb)
    assert r["clean"] and r["totals"]["rows"] > 0
    with sb.master() as master:
        assert inspector.binlog_position(master) == before, "verify wrote nothing to the source"


def test_require_verify_refuses_the_cutover_until_a_clean_verify_then_lets_it_through(sb, tmp_path):
    # The before_cutover hook says no: a cutover that passed its gates stops there, nothing changed.
    pb = fast_playbook(sb, tmp_path, cutover={"require_verify": True}, hooks={"before_cutover": "false"})
    verify(sb, "--tables", "shop.customers", playbook=pb)  # clean, but not every table

    refused = migrate("cutover", "-p", str(pb), "--yes", expect=1).stdout
    assert "require_verify" in refused and f"migrate verify -p {pb}" in refused
    assert "only some tables" in refused

    assert verify(sb, playbook=pb)["clean"]
    passed = migrate("cutover", "-p", str(pb), "--yes", expect=1).stdout
    assert "before_cutover hook said no" in passed and "require_verify" not in passed
    last = [e for e in journal(sb) if e.get("workflow") == "cutover"]
    assert any(e["event"] == "step_done" and e["step"] == "gates" for e in last if e["run_id"] == last[-1]["run_id"])
    assert phase_of(sb).phase in ("replicating", "rolled_back") and phase_of(sb).app_on == "source"

    migrate("start", "-p", str(pb))  # checks and repairs: the clean verify is older than it now
    stale = migrate("cutover", "-p", str(pb), "--yes", expect=1).stdout
    assert "began before the last `migrate start`" in stale and f"migrate verify -p {pb}" in stale


def test_after_the_cutover_the_source_is_verified_against_the_target_and_its_difference_named(sb, tmp_path):
    """The roles turn with the cutover: the target is the truth, the source (following it by reverse
    replication, the rollback's way back) is checked against it, under the application's load on the target."""
    pb = fast_playbook(sb, tmp_path)
    with own_table(sb, "verify_after", "(id INT PRIMARY KEY, v VARCHAR(20) NOT NULL) ENGINE=InnoDB",
                   [(i, f"v{i}") for i in range(1, 501)]):
        migrate("cutover", "-p", str(pb), "--yes")
        try:
            with Load(sb, rate=100) as load:
                clean = verify(sb, playbook=pb)
            with sb.source.root() as source:  # the old primary, now a replica: changed behind replication's back
                source.run("SET SESSION sql_log_bin = 0")
                source.run("UPDATE shop.verify_after SET v = 'changed' WHERE id = 77")
            found = verify(sb, "--tables", "shop.verify_after", expect=1, playbook=pb)
        finally:
            migrate("rollback", "-p", str(pb), "--yes")
    assert load.result.acked_order_ids, "the application wrote on the target while verify ran"
    assert (clean["primary"], clean["replica"]) == ("target", "source") and clean["full"], clean
    assert clean["clean"] and clean["differences"] == [] and clean["unverified"] == [], clean
    assert "shop.verify_after" in {t["table"] for t in clean["tables"]}
    [d] = found["differences"]
    assert d["table"] == "shop.verify_after" and d["rows"] == [{"key": 77, "kind": "changed"}], d
    assert d["first_key"] <= 77 <= d["last_key"]
    assert (found["primary"], found["replica"]) == ("target", "source")


def test_verify_pauses_while_the_target_lags_and_goes_on_when_it_catches_up(sb):
    with Load(sb, rate=100), sb.target.root() as target:
        target.run("FLUSH TABLES WITH READ LOCK")  # the target's applier waits: replication healthy, lag grows
        proc = subprocess.Popen([sys.executable, "-m", "migrate", "verify", "-p", str(sb.playbook_path), "--json"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(5)
            assert proc.poll() is None, "verify waits for the target instead of comparing it"
        finally:
            target.run("UNLOCK TABLES")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and json.loads(out)["clean"], out + err[-2000:]
    assert "throttled: the replica is more than" in err
    waited = [e["waited_s"] for e in chunk_events(sb) if e["run_id"] == json.loads(out)["run_id"]]
    assert max(waited) >= 3, waited
