"""Measures the throughput figures `migrate plan` estimates with; prints JSON.

- seed MB/s: the source's data size (information_schema data + index length of the copied schemas) over
  the duration of `migrate start`'s seed step (dump and load on the target host), default tool;
- apply MB/s: with the target's SQL thread stopped, the application writes for a while; the binlog bytes
  written divided by the time the replica then takes to apply them.

    .venv/bin/python bench/plan_defaults.py [--rows 300000] [--load-s 10]
"""

from __future__ import annotations

import argparse
import json
import time

from pydantic import SecretStr

from migrate import log
from migrate.adapters.db import Endpoint
from migrate.capabilities import inspector, replication
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sample_data
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.workload import AppWorkload
from migrate.workflows import demo, start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--load-s", type=float, default=10.0)
    args = parser.parse_args()
    log.configure("console", "warning")
    with sandbox_mod.temporary(args.rows, prefix="bench-") as sb:
        m = Migration(load(sb.playbook_path))
        with sb.source.root() as root:  # fresh statistics: data_length lags a bulk load otherwise
            for t in inspector.tables(root, inspector.user_schemas(root)):
                root.run(f"ANALYZE TABLE `{t['schema']}`.`{t['name']}`")
        with m.source() as s:
            schemas = inspector.schemas_to_copy(s, None)
            data_bytes = sum(int(t["bytes"] or 0) for t in inspector.tables(s, schemas))
        result = start.run(m)
        seed_s = next(st.duration_s for st in result.steps if st.name == "seed")
        demo.wait_caught_up(m, 300)

        with m.target() as t:
            t.run(t.dialect.stop_replica_sql_thread())
        with m.source() as s:
            before = inspector.binlog_position(s)
            binlog_before = sum(int(r["File_size"]) for r in s.run("SHOW BINARY LOGS"))
        app_ep = Endpoint("127.0.0.1", sb.ports["haproxy"], sample_data.APP_USER, SecretStr(sb.secret("app")))
        writes = AppWorkload(lambda: app_ep, rate=5000, threads=8,
                             customers=sample_data.customers_for(args.rows)).start()
        time.sleep(args.load_s)
        load_result = writes.stop()
        with m.source() as s:
            binlog_bytes = sum(int(r["File_size"]) for r in s.run("SHOW BINARY LOGS")) - binlog_before
        began = time.monotonic()
        with m.target() as t:
            t.run(t.dialect.start_replica_sql_thread())
        with m.source() as s, m.target() as t:
            while not replication.measure_lag(s, replication.read_status(t)).caught_up:
                time.sleep(0.05)
        apply_s = time.monotonic() - began
        print(json.dumps({
            "bench": "plan_defaults", "rows": args.rows, "source_data_mb": round(data_bytes / 1e6, 1),
            "seed_s": round(seed_s, 2), "seed_mb_per_s": round(data_bytes / 1e6 / seed_s, 2),
            "seed_tool": result.steps[2].message.split(" with ")[1].split(" ")[0],
            "binlog_mb_written": round(binlog_bytes / 1e6, 2), "load_orders_per_s": round(load_result.achieved_tps),
            "apply_s": round(apply_s, 2), "apply_mb_per_s": round(binlog_bytes / 1e6 / apply_s, 2),
            "from": f"{before.file}:{before.pos}"}, indent=2))


if __name__ == "__main__":
    main()
