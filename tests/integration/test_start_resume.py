"""SIGKILL a real `migrate start` in the middle of the load, while the application writes; rerunning the
same command ends with a correct replica (nothing missing, nothing twice) and the target's durability
settings restored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sample_data
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.workload import AppWorkload
from migrate.workflows import demo
from tests.helpers import ROOT, endpoint_as, fingerprint, run_migrate

ROWS = 300_000


def _loading(directory: Path) -> bool:
    """myloader (or mysql) is loading into the target: a process naming this sandbox's seed directory."""
    out = subprocess.run(["pgrep", "-af", "myloader"], capture_output=True, text=True).stdout
    return str(directory) in out


def test_start_killed_during_the_load_resumes_to_a_correct_replica(tmp_path):
    with sandbox_mod.temporary(ROWS) as sb:
        with sb.target.root() as t:
            before = {n: int(t.variable(n)) for n in ("innodb_flush_log_at_trx_commit", "sync_binlog", "innodb_log_file_size")}
        app = AppWorkload(lambda: endpoint_as(sb.ports["haproxy"], sample_data.APP_USER, sb.secret("app")),
                          rate=100, threads=2, customers=sample_data.customers_for(ROWS)).start()
        try:
            first = subprocess.Popen([sys.executable, "-m", "migrate", "start", "-p", str(sb.playbook_path)],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while not _loading(sb.dir) and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.05)
            assert _loading(sb.dir), "never saw the load running"
            time.sleep(0.5)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
            with sb.target.root() as t:
                assert int(t.variable("innodb_flush_log_at_trx_commit")) == 0  # the crash left it relaxed
            rerun = run_migrate("start", "-p", str(sb.playbook_path), "--json", timeout=600)
            time.sleep(0.5)
        finally:
            app.stop()
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        steps = {s["name"]: s["status"] for s in json.loads(rerun.stdout)["steps"]}
        assert steps["tune_target_for_load"] == "skipped" and steps["seed"] == "done"
        assert steps["restore_target_settings"] == "done"
        demo.wait_caught_up(Migration(load(sb.playbook_path)), 120)
        with sb.source.root() as s, sb.target.root() as t:
            for table, key in (("customers", "id"), ("orders", "id"), ("order_lines", "order_id")):
                assert fingerprint(s, "shop", table, key, None) == fingerprint(t, "shop", table, key, None), table
            assert {n: int(t.variable(n)) for n in before} == before
        assert not _loading(sb.dir)
