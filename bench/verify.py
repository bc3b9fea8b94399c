"""Verification speed on the sandbox, one run, JSON out: `migrate verify` (as the RDS-like master user) beside
pt-table-checksum (as the source's root, which holds the SUPER it needs) on the same tables, in the same run.

    .venv/bin/python bench/verify.py [--gb 1.0] [--rounds 2]

The source gets --gb of sysbench-style tables (bench/seed.py's), `migrate start` seeds the target and starts
replication, then the rounds alternate: `migrate verify --tables sb.sbtest1 ...`, then pt-table-checksum
--databases sb (its defaults: chunk time 0.5 s, CRC32, no replica checks: --recursion-method=none). Rows/s =
the tables' rows / the command's wall time (start-up included, both). Goal: verify >= pt-table-checksum.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seed import TABLES, make_tables  # bench/seed.py: python puts this script's directory on sys.path

from migrate import log
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sandbox as sandbox_mod
from migrate.workflows import start


def run_verify(playbook: Path, tables: list[str]) -> dict:
    began = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "migrate", "--log-level", "warning", "verify", "-p", str(playbook),
                          "--json", "--tables", *tables], capture_output=True, text=True)
    wall = time.monotonic() - began
    result = json.loads(out.stdout)
    if out.returncode != 0:
        return {"error": result.get("summary") or result.get("message"), "exit": out.returncode}
    rows = result["totals"]["rows"]
    return {"seconds": round(wall, 2), "rows": rows, "rows_per_s": round(rows / wall), "chunks":
            result["totals"]["chunks"], "rechecked_chunks": result["totals"]["rechecked_chunks"],
            "clean": result["clean"]}


def run_pt(defaults: Path, socket: str, rows: int) -> dict:
    began = time.monotonic()
    out = subprocess.run(["pt-table-checksum", f"F={defaults},S={socket}", "--databases", "sb",
                          "--recursion-method=none", "--no-check-binlog-format", "--no-version-check"],
                         capture_output=True, text=True)
    wall = time.monotonic() - began
    # Its exit status is a bit mask: 1 error, 2 already running, 4 signal; the others (no replicas found, ...)
    # are warnings. Its report's ROWS column must add up to every row.
    counted = sum(int(line.split()[3]) for line in out.stdout.splitlines() if line.split()[-1:] and
                  line.split()[-1].startswith("sb.") and len(line.split()) >= 9)
    if out.returncode & 7 or counted != rows:
        return {"error": (out.stdout + out.stderr)[-1500:], "exit": out.returncode, "rows_counted": counted}
    return {"seconds": round(wall, 2), "rows": rows, "rows_per_s": round(rows / wall), "exit": out.returncode}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    log.configure("console", "warning")
    parent = Path(tempfile.mkdtemp(prefix="bench-verify-", dir="/tmp"))
    directory = parent / "sb"
    try:
        sb, _ = sandbox_mod.up(directory, 10_000)
        began = time.monotonic()
        data = make_tables(sb, args.gb)
        print(f"source: {data / 1e6:,.0f} MB in {time.monotonic() - began:.0f} s", file=sys.stderr)
        began = time.monotonic()
        playbook = parent / "pb.yml"  # the tables were made out of the binary log: seed from the source itself
        playbook.write_text(sb.playbook_path.read_text().replace("consistency: auto", "consistency: lock"))
        start.run(Migration(load(playbook)))
        print(f"seeded and replicating in {time.monotonic() - began:.0f} s", file=sys.stderr)
        tables = [f"sb.sbtest{i}" for i in range(1, TABLES + 1)]
        with sb.source.root() as root:
            rows = sum(int(root.value(f"SELECT COUNT(*) FROM {t}")) for t in tables)
            sb_bytes = int(root.value("SELECT SUM(data_length + index_length) FROM information_schema.tables "
                                      "WHERE table_schema = 'sb'"))
        defaults = parent / "root.cnf"  # the root password in a 0600 file, not on pt's command line
        defaults.touch(mode=0o600)
        defaults.write_text(f"[client]\nuser=root\npassword={sb.source.root_password_file.read_text().strip()}\n")
        verify_runs, pt_runs = [], []
        for _ in range(args.rounds):
            verify_runs.append(run_verify(playbook, tables))
            print(f"verify: {verify_runs[-1]}", file=sys.stderr)
            pt_runs.append(run_pt(defaults, str(sb.source.socket), rows))
            print(f"pt-table-checksum: {pt_runs[-1]}", file=sys.stderr)
        best_verify = max((r.get("rows_per_s", 0) for r in verify_runs), default=0)
        best_pt = max((r.get("rows_per_s", 0) for r in pt_runs), default=0)
        print(json.dumps({
            "bench": "verify", "tables": tables, "rows": rows, "mb": round(sb_bytes / 1e6),
            "migrate_verify": {"as": "admin (the RDS-like master user)", "runs": verify_runs,
                               "best_rows_per_s": best_verify},
            "pt_table_checksum": {"as": "root (SUPER: it sets binlog_format=STATEMENT)", "runs": pt_runs,
                                  "best_rows_per_s": best_pt},
            "verify_over_pt": round(best_verify / best_pt, 2) if best_pt else None,
            "goal": "migrate verify rows/s >= pt-table-checksum rows/s",
            "command": f"{sys.executable} bench/verify.py --gb {args.gb} --rounds {args.rounds}",
        }, indent=2))
    finally:
        if (directory / sandbox_mod.MANIFEST).exists():
            sandbox_mod.down(directory)
        shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
