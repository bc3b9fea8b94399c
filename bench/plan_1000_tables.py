"""Times `migrate plan` on a source with 1,000 tables (the sandbox plus a schema of 1,000 small tables);
prints JSON. The plan samples the binlog write rate for estimates.binlog_sample_s (2 s by default).

    .venv/bin/python bench/plan_1000_tables.py [--tables 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from migrate import log
from migrate.sandbox import sandbox as sandbox_mod


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    log.configure("console", "warning")
    with sandbox_mod.temporary(2000, prefix="bench-") as sb:
        with sb.source.root() as root:
            root.run("CREATE DATABASE wide")
            for i in range(args.tables):
                root.run(f"CREATE TABLE wide.t{i:04d} (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB")
            total = root.value("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN "
                               "('mysql', 'information_schema', 'performance_schema', 'sys')")
        times, verdicts = [], []
        for _ in range(args.runs):
            began = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "migrate", "--log-level", "warning", "plan", "-p",
                                     str(sb.playbook_path), "--json"], capture_output=True, text=True)
            times.append(time.monotonic() - began)
            verdicts.append(json.loads(result.stdout)["verdict"])
        print(json.dumps({"bench": "plan_1000_tables", "user_tables": total, "runs": args.runs,
                          "seconds": {"median": round(statistics.median(times), 2), "max": round(max(times), 2),
                                      "all": [round(t, 2) for t in times]},
                          "binlog_sample_s": 2.0, "verdicts": verdicts, "goal_s": 5}, indent=2))


if __name__ == "__main__":
    main()
