"""Times `migrate sandbox up` (from nothing) and `sandbox down`, several runs; prints JSON.

    .venv/bin/python bench/sandbox_up.py [--runs 3] [--rows 10000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(*args: str) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "migrate", "--log-level", "warning", *args], check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    ups, downs = [], []
    for _ in range(args.runs):
        directory = Path(tempfile.mkdtemp(prefix="bench-sb-")) / "sb"
        ups.append(timed("sandbox", "up", "--dir", str(directory), "--rows", str(args.rows)))
        downs.append(timed("sandbox", "down", "--dir", str(directory)))
        directory.parent.rmdir()
    print(json.dumps({"bench": "sandbox_up", "rows": args.rows, "runs": args.runs,
                      "up_s": {"median": round(statistics.median(ups), 2), "max": round(max(ups), 2),
                               "all": [round(u, 2) for u in ups]},
                      "down_s": {"median": round(statistics.median(downs), 2), "max": round(max(downs), 2)}},
                     indent=2))


if __name__ == "__main__":
    main()
