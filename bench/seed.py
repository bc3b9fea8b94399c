"""Seeding speed on the sandbox, one run, JSON out: `mysqldump | mysql` (what users do today), mydumper /
myloader with their defaults, and `migrate start` (logical, and physical when --physical is given),
each into an empty target, from a source holding --gb of sysbench-style tables.

    .venv/bin/python bench/seed.py [--gb 1.0] [--physical]

MB/s = the source's data + index size (information_schema after ANALYZE TABLE) / seconds of dump + load.
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

from migrate import log
from migrate.adapters.client_config import defaults_file
from migrate.capabilities import inspector, replication
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sandbox as sandbox_mod

ROW_BYTES = 230  # sysbench's sbtest row with its secondary index, as InnoDB stores it (measured)
TABLES = 4


def make_tables(sb, gb: float) -> int:
    rows = int(gb * 1e9 / ROW_BYTES / TABLES)
    with sb.source.root() as root:
        root.run("SET SESSION sql_log_bin = 0")  # the seed copies it; nothing needs to replicate it
        root.run("CREATE DATABASE IF NOT EXISTS sb")
        for i in range(1, TABLES + 1):
            root.run(f"CREATE TABLE sb.sbtest{i} (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL "
                     "DEFAULT 0, c CHAR(120) NOT NULL DEFAULT '', pad CHAR(60) NOT NULL DEFAULT '', KEY k_1 (k)) "
                     "ENGINE=InnoDB")
            for start in range(0, rows, 200_000):  # batches: each statement well inside the session's timeout
                n = min(200_000, rows - start)
                root.run(f"INSERT INTO sb.sbtest{i} (k, c, pad) SELECT FLOOR(RAND() * {rows}), "
                         "LEFT(CONCAT(MD5(RAND()), MD5(RAND()), MD5(RAND()), MD5(RAND())), 119), "
                         f"LEFT(CONCAT(MD5(RAND()), MD5(RAND())), 59) FROM sb.seq_1_to_{n}")
            root.run(f"ANALYZE TABLE sb.sbtest{i}")
        for t in inspector.tables(root, inspector.user_schemas(root)):
            root.run(f"ANALYZE TABLE `{t['schema']}`.`{t['name']}`")
        return sum(int(t["bytes"] or 0) for t in inspector.tables(root, inspector.user_schemas(root)))


def clean_target(sb) -> None:
    with sb.target.root() as t:
        replication.forget(t)
        t.run("SET SESSION sql_log_bin = 0")
        for schema in inspector.user_schemas(t):
            t.run(f"DROP DATABASE `{schema}`")
        t.run("RESET MASTER")


def physical_playbook(sb, parent: Path, directory: Path) -> Path:
    """The sandbox's source as a self-managed server reached over SSH (as tests/integration/test_seed_physical)."""
    import yaml

    password = "bench-dba-pw-1"
    with sb.source.root() as root:
        root.run("SET SESSION sql_log_bin = 0")
        root.run("CREATE USER IF NOT EXISTS 'dba'@'127.0.0.1' IDENTIFIED BY %s", (password,))
        root.run("GRANT ALL PRIVILEGES ON *.* TO 'dba'@'127.0.0.1' WITH GRANT OPTION")
        root.run("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY %s", (sb.secret("target"),))
        root.run("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
    (parent / "dba.pw").write_text(password)
    (parent / "dba.pw").chmod(0o600)
    pb = yaml.safe_load(sb.playbook_path.read_text())
    control = f"{sys.executable} -m migrate sandbox server {{}} --dir {directory} --name target"
    pb["name"] = "bench-physical"
    pb["source"] = {"kind": "mysql", "host": "127.0.0.1", "port": sb.ports["source"], "user": "dba",
                    "password_file": str(parent / "dba.pw"), "tls": {"mode": "disabled"},
                    "ssh": pb["target"]["ssh"], "datadir": str(sb.source.datadir)}
    pb["target"]["service"] = {"stop": control.format("stop"), "start": control.format("start")}
    pb["seed"] = {"method": "physical", "threads": 4}
    path = parent / "pb-physical.yml"
    path.write_text(yaml.safe_dump(pb, sort_keys=False))
    return path


def timed(command: str) -> float:
    began = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--physical", action="store_true")
    args = parser.parse_args()
    log.configure("console", "warning")
    parent = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    directory = parent / "sb"
    results: dict[str, dict] = {}
    try:
        sb, _ = sandbox_mod.up(directory, 10_000)
        began = time.monotonic()
        data = make_tables(sb, args.gb)
        print(f"source: {data / 1e6:,.0f} MB in {time.monotonic() - began:.0f} s", file=sys.stderr)
        m = Migration(load(sb.playbook_path))
        src, tgt = parent / "src.cnf", parent / "tgt.cnf"
        src.write_bytes(defaults_file(m.source_endpoint()))
        tgt.write_bytes(defaults_file(m.target_endpoint()))
        src.chmod(0o600)
        tgt.chmod(0o600)
        with sb.source.root() as root:
            schemas = " ".join(inspector.user_schemas(root))

        clean_target(sb)
        results["mysqldump | mysql"] = {"seconds": timed(
            f"mariadb-dump --defaults-file={src} --single-transaction --master-data=2 --routines --events "
            f"--triggers --databases {schemas} | mariadb --defaults-file={tgt}")}
        clean_target(sb)
        dump_dir = parent / "mydumper-defaults"
        dump_s = timed(f"mydumper --defaults-file={src} --lock-all-tables --regex '^(sb|shop)\\.' -o {dump_dir}")
        load_s = timed(f"myloader --defaults-file={tgt} -d {dump_dir}")
        results["mydumper/myloader defaults"] = {"seconds": dump_s + load_s, "dump_s": dump_s, "load_s": load_s}
        shutil.rmtree(dump_dir)
        for method in (["dump", "physical"] if args.physical else ["dump"]):
            clean_target(sb)
            playbook = physical_playbook(sb, parent, directory) if method == "physical" else parent / "pb-dump.yml"
            if method == "dump":
                text = sb.playbook_path.read_text().replace("name: sandbox", "name: bench-dump")
                playbook.write_text(text.replace("consistency: auto", "consistency: lock"))
            began = time.monotonic()
            run = subprocess.run([sys.executable, "-m", "migrate", "--log-level", "warning", "start", "-p",
                                  str(playbook), "--json"], capture_output=True, text=True)
            total = time.monotonic() - began
            if run.returncode != 0:
                results[f"migrate start ({method})"] = {"error": run.stdout[-1500:]}
                continue
            steps = {s["name"]: s["duration_s"] for s in json.loads(run.stdout)["steps"]}
            results[f"migrate start ({method})"] = {"seconds": steps["seed"], "whole_start_s": round(total, 2)}
        base = results["mysqldump | mysql"]["seconds"]
        for r in results.values():
            if "seconds" in r:
                r["seconds"] = round(r["seconds"], 2)
                r["mb_per_s"] = round(data / 1e6 / r["seconds"], 1)
                r["x_baseline"] = round(base / r["seconds"], 2)
        print(json.dumps({"bench": "seed", "source_mb": round(data / 1e6), "tables": TABLES + 3, "results": results,
                          "goal": "logical >= 2x baseline and faster than myloader defaults; physical >= 4x"},
                         indent=2))
    finally:
        if (directory / sandbox_mod.MANIFEST).exists():
            sandbox_mod.down(directory)
        shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
