"""How close `migrate`'s heartbeat lag comes to the true replication delay, beside pt-heartbeat's and the
server's Seconds_Behind_Master, on the same injected delays; prints JSON.

One sandbox: `migrate start` (the target replicates from the source), the target's replication routed through
a TCP proxy of the suite's own (tests/tcp_proxy.py, on 127.0.0.2) so the link can be silenced, a light
application load (--tps orders per second through HAProxy), and two heartbeat writers on the source at the
same interval (0.5 s): `migrate`'s `heartbeat.Writer` (a thread in this process, on the playbook's source
account; with --writer event, the source's own event `_migrate.heartbeat_event` instead, as `migrate start`
installs it with heartbeat.event: true) and `pt-heartbeat --update --replace --utc` (its own process, the source's root, table
`_migrate.pt_heartbeat`).

Per variant, per injected delay D (--delays) and run (--runs), the replica is made to fall behind at a random
moment, the true delay counted (time.monotonic) from the moment the fault was in place:

    sql_thread_stopped   STOP SLAVE SQL_THREAD          Seconds_Behind_Master reads NULL
    io_thread_stopped    STOP SLAVE IO_THREAD           NULL too
    silent_link          the proxy stalls the link      0: the IO thread still says it runs (MySQL bug 82499)

D to D + 1 s later (at the next x.5 s of the wall clock), at one moment, three readings: `migrate`'s
`read_lag` (the truth is the middle of the monotonic times around it), `pt-heartbeat --check --master-server-id <source> --utc` on the replica (a one-shot
check, which waits for the next whole second plus its --skew, 0.5 s by default, before it reads: it is started
so that it reads at the same x.5 s of the wall clock as `read_lag`; its own truth is taken at the `now` it
printed under PTDEBUG) and Seconds_Behind_Master. Then the fault is undone and the replica catches up.

Per variant and delay, then overall: the truth, each estimate, and |estimate - truth| (median, max) for `migrate`
and for pt-heartbeat, with the signed mean (the bias). The goal (issue 12): `migrate`'s largest error <= 0.5 s
while Seconds_Behind_Master reads 0 or NULL.

    .venv/bin/python bench/heartbeat.py [--runs 3] [--delays 1,2,5,10] [--tps 50] [--rows 2000]
        [--variants sql_thread_stopped,io_thread_stopped,silent_link] [--writer thread|event]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from migrate import log
from migrate.capabilities import heartbeat, heartbeat_event, replication
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import repoints
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.workload import AppWorkload
from migrate.workflows import start

ROOT = Path(__file__).resolve().parents[1]
INTERVAL_S = 0.5
GOAL_S = 0.5
PT_TABLE = "pt_heartbeat"
PT_SKEW_S = 0.5  # pt-heartbeat's --skew default, left as it is: --check subtracts it from its reading
PT_START_MARGIN_S = 0.02  # pt-heartbeat --check is started this long after a whole second (its startup after)
REPLICATION_HOST = "127.0.0.2"
VARIANTS = ("sql_thread_stopped", "io_thread_stopped", "silent_link")
WARMUP_S = 3.0


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# -- pt-heartbeat ------------------------------------------------------------------------------------


def pt_args(server, name: str, *more: str) -> list[str]:
    """pt-heartbeat as the server's root over its socket; the password in a 0600 option file, never on the
    command line; a sentinel of its own (the default, /tmp/pt-heartbeat-sentinel, would let any --stop end it)."""
    cnf = server.datadir.parent / f"pt-{name}.cnf"
    cnf.touch(mode=0o600)
    cnf.write_text(f"[client]\nuser=root\npassword=\"{server.root_password_file.read_text().strip()}\"\n")
    return ["pt-heartbeat", f"--defaults-file={cnf}", "--socket", str(server.socket), "--utc", "--database",
            "_migrate", "--table", PT_TABLE, "--no-version-check", "--sentinel", str(cnf.parent / "pt-sentinel"),
            *more]


def pt_check(proc: subprocess.Popen) -> dict:
    """The one-shot check's reading (as printed, and to the microsecond) and the wall-clock moment it read at."""
    out, err = proc.communicate(timeout=30)
    nows = re.findall(r"now: (\S+)", err)
    delays = re.findall(r"Delay (\S+) on", err)
    if proc.returncode != 0 or not out.strip() or not nows:
        said = "\n".join(line for line in (out + err).splitlines() if not line.startswith("#"))  # not PTDEBUG's
        return {"ok": False, "exit_code": proc.returncode, "error": said[-500:]}
    return {"ok": True, "printed_s": float(out.split()[0]), "lag_s": max(0.0, float(delays[-1])),
            "read_wall": datetime.fromisoformat(nows[-1]).replace(tzinfo=UTC).timestamp()}


# -- the faults --------------------------------------------------------------------------------------


def tcp_proxy(to_port: int):
    """The suite's fault proxy, on 127.0.0.2 (the test suite's module: bench/ is not a package)."""
    sys.path.insert(0, str(ROOT))
    from tests.tcp_proxy import TcpProxy

    return TcpProxy("127.0.0.1", to_port, host=REPLICATION_HOST)


def through_proxy(sb, proxy) -> None:
    """The target's replication from the source through the proxy (GTID slave_pos: it goes on where it was)."""
    with sb.target.root() as t:
        t.run("STOP SLAVE")
        t.run(f"CHANGE MASTER TO MASTER_HOST='{REPLICATION_HOST}', MASTER_PORT={proxy.port}")
        t.run("START SLAVE")


def fault(sb, proxy, variant: str, on: bool) -> None:
    if variant == "silent_link":
        proxy.set("stall" if on else "pass")
        return
    thread = "SQL_THREAD" if variant == "sql_thread_stopped" else "IO_THREAD"
    with sb.target.root() as t:
        t.run(f"{'STOP' if on else 'START'} SLAVE {thread}")


def caught_up(source, target, timeout: float = 120) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        status = replication.read_status(target)
        if status.healthy and replication.measure_lag(source, status).caught_up:
            return time.monotonic() - began
        time.sleep(0.1)
    raise RuntimeError(f"the replica did not catch up within {timeout:g} s")


# -- one sample --------------------------------------------------------------------------------------


def sleep_until_wall(at: float) -> None:
    while (left := at - time.time()) > 0:
        time.sleep(min(left, 0.05) if left < 0.2 else left - 0.1)


def sample(sb, proxy, source, target, source_id: int, variant: str, delay: float) -> dict:
    """Fault in place at a random moment; about `delay` s later, at the next x.5 s of the wall clock, the three
    readings at once; the fault undone, the replica caught up."""
    stop_at = time.time() + 1.6 + random.random()  # a random phase against both writers' schedules
    read_at = math.ceil(stop_at + delay + 0.05 - 0.5) + 0.5  # pt-heartbeat --check reads at a whole s + 0.5
    launch_at = read_at - 1.5 + PT_START_MARGIN_S  # its schedule starts from the next whole second after launch
    check = pt_args(sb.target, "target", "--check", "--master-server-id", str(source_id))
    pt = None
    try:
        for at, action in sorted([(launch_at, "launch"), (stop_at, "stop")]):
            sleep_until_wall(at)
            if action == "launch":
                pt = subprocess.Popen(check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "PTDEBUG": "1"})
            else:
                fault(sb, proxy, variant, True)
                stopped, stopped_wall = time.monotonic(), time.time()
        sleep_until_wall(read_at)
        before, before_wall = time.monotonic(), time.time()
        beat = heartbeat.read_lag(source, target, source_id)
        after = time.monotonic()
        seconds_behind = replication.read_status(target).seconds_behind
        pt_read = pt_check(pt)  # the fault still in place: pt-heartbeat may read a little after read_lag
    finally:
        fault(sb, proxy, variant, False)
        if pt is not None and pt.poll() is None:
            pt.kill()
            pt.wait()
    catch_up_s = caught_up(source, target)
    truth = (before + after) / 2 - stopped
    out = {"variant": variant, "delay_s": delay, "truth_s": round(truth, 4),
           "read_bracket_s": round(after - before, 4), "migrate_lag_s": beat.lag_s,
           "migrate_error_bound_s": beat.error_s, "migrate_said": beat.said,
           "migrate_error_s": None if beat.lag_s is None else round(beat.lag_s - truth, 4),
           "seconds_behind_master": seconds_behind, "catch_up_s": round(catch_up_s, 2)}
    if pt_read["ok"]:
        pt_truth = pt_read["read_wall"] - stopped_wall
        out.update(pt_heartbeat_lag_s=round(pt_read["lag_s"], 4), pt_heartbeat_printed_s=pt_read["printed_s"],
                   pt_heartbeat_truth_s=round(pt_truth, 4),
                   pt_heartbeat_error_s=round(pt_read["lag_s"] - pt_truth, 4),
                   pt_heartbeat_read_offset_s=round(pt_read["read_wall"] - before_wall, 4))
    else:
        out.update(pt_heartbeat_lag_s=None, pt_heartbeat_error_s=None, pt_heartbeat_failed=pt_read["error"])
    return out


# -- the summary -------------------------------------------------------------------------------------


def errors(samples: list[dict], key: str) -> dict:
    signed = [s[key] for s in samples if s.get(key) is not None]
    if not signed:
        return {"n": 0, "missing": len(samples)}
    absolute = [abs(e) for e in signed]
    return {"n": len(signed), "missing": len(samples) - len(signed), "median": round(statistics.median(absolute), 3),
            "max": round(max(absolute), 3), "bias": round(statistics.mean(signed), 3)}


def summary(samples: list[dict]) -> dict:
    sbm = sorted({str(s["seconds_behind_master"]) for s in samples})
    return {"truth_s": [s["truth_s"] for s in samples], "migrate_lag_s": [s["migrate_lag_s"] for s in samples],
            "pt_heartbeat_lag_s": [s["pt_heartbeat_lag_s"] for s in samples],
            "seconds_behind_master": [s["seconds_behind_master"] for s in samples],
            "migrate_error_s": errors(samples, "migrate_error_s"),
            "pt_heartbeat_error_s": errors(samples, "pt_heartbeat_error_s"), "seconds_behind_master_seen": sbm}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--delays", default="1,2,5,10", help="injected delays, seconds, comma-separated")
    parser.add_argument("--tps", type=float, default=50, help="the light application load, orders per second")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--writer", choices=("thread", "event"), default="thread",
                        help="migrate's writer: the Writer thread of `migrate heartbeat`, or the source's event")
    args = parser.parse_args()
    delays = [float(d) for d in args.delays.split(",")]
    variants = args.variants.split(",")
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variants {sorted(unknown)} (known: {', '.join(VARIANTS)})")
    log.configure("console", "warning")  # logs on stderr; stdout carries only the JSON
    load_before = os.getloadavg()
    samples: list[dict] = []
    with sandbox_mod.temporary(args.rows, prefix="bench-") as sb, contextlib.ExitStack() as stack:
        m = Migration(load(sb.playbook_path))
        start.run(m)
        proxy = stack.enter_context(tcp_proxy(sb.ports["source"]))
        through_proxy(sb, proxy)
        source, target = stack.enter_context(sb.source.root()), stack.enter_context(sb.target.root())
        source_id = int(source.value("SELECT @@server_id"))
        if args.writer == "event":  # the source writes it itself (heartbeat.event), as `migrate start` installs it
            source.run("SET GLOBAL event_scheduler = ON")
            with m.source() as own:
                say(heartbeat_event.install(own, INTERVAL_S))
        else:
            stack.enter_context(heartbeat.Writer(m.source_endpoint, INTERVAL_S, "bench/heartbeat.py"))
        updater = subprocess.Popen(pt_args(sb.source, "source", "--update", "--replace", "--create-table",
                                           "--interval", str(INTERVAL_S)), stderr=subprocess.PIPE, text=True)
        stack.callback(lambda: (updater.terminate(), updater.wait(10)))
        app = AppWorkload(repoints.app_endpoint(sb), rate=args.tps, threads=max(1, int(args.tps // 50)))
        app.start()
        stack.callback(app.stop)
        time.sleep(WARMUP_S)
        if updater.poll() is not None:
            raise RuntimeError(f"pt-heartbeat --update exited {updater.returncode}: {updater.stderr.read()[-500:]}")
        caught_up(source, target)
        for variant in variants:
            for run in range(args.runs):
                for delay in delays:
                    s = sample(sb, proxy, source, target, source_id, variant, delay)
                    samples.append({"run": run + 1, **s})
                    say(f"{variant} D={delay:g} s run {run + 1}: truth {s['truth_s']:.3f}, migrate "
                        f"{s['migrate_lag_s']}, pt-heartbeat {s['pt_heartbeat_lag_s']}, "
                        f"Seconds_Behind_Master {s['seconds_behind_master']}")
        acked, _ = app.snapshot()
    migrate_max = errors(samples, "migrate_error_s").get("max")
    sbm_silent = all(s["seconds_behind_master"] in (0, None) for s in samples)
    print(json.dumps({
        "bench": "heartbeat", "writer": args.writer, "interval_s": INTERVAL_S, "runs": args.runs, "delays_s": delays, "rows": args.rows,
        "target_tps": args.tps, "orders_acknowledged": len(acked), "cores": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "pt_heartbeat": {"version": subprocess.run(["pt-heartbeat", "--version"], capture_output=True,
                                                   text=True).stdout.strip(), "check_skew_s": PT_SKEW_S},
        "variants": {v: {"per_delay": {f"{d:g}": summary([s for s in samples if s["variant"] == v
                                                          and s["delay_s"] == d]) for d in delays},
                         "migrate_error_s": errors([s for s in samples if s["variant"] == v], "migrate_error_s"),
                         "pt_heartbeat_error_s": errors([s for s in samples if s["variant"] == v],
                                                        "pt_heartbeat_error_s")} for v in variants},
        "overall": {"migrate_error_s": errors(samples, "migrate_error_s"),
                    "pt_heartbeat_error_s": errors(samples, "pt_heartbeat_error_s"),
                    "seconds_behind_master_0_or_null": sbm_silent,
                    "pt_heartbeat_read_after_read_lag_s_max": max(
                        (s["pt_heartbeat_read_offset_s"] for s in samples if "pt_heartbeat_read_offset_s" in s),
                        default=None)},
        "goal": {"migrate_max_error_s": GOAL_S, "while": "Seconds_Behind_Master reads 0 or NULL"},
        "goal_met": migrate_max is not None and migrate_max <= GOAL_S and sbm_silent
        and all(s["migrate_lag_s"] is not None for s in samples),
        "samples": samples}, indent=2))


if __name__ == "__main__":
    main()
