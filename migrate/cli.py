"""The command line: parse flags, load the playbook, call one workflow, render its result.

Expected failures are caught here, once, and become the documented exit code and a message that says
what to do next; no traceback for them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from migrate import __version__, log
from migrate.errors import BadInput, ExitCode, MigrateError, NotBuiltYet
from migrate.playbook import load as load_playbook

COMMANDS = {
    "plan": "preflight checks + ordered plan with estimates; go / no-go",
    "start": "seed the target (dump or physical), then start replication",
    "status": "state, replication health, true lag, catch-up ETA",
    "verify": "chunked checksums, source vs target, at consistent points",
    "rehearse": "fire drill: the whole cutover on a rehearsal target, timed, production untouched",
    "cutover": "the timed cutover, in the maintenance window",
    "rollback": "fail back (before the point of no return: undo; after: reverse)",
    "heartbeat": "long-running: writes the heartbeat row that true lag is read from",
    "report": "the latest run's report (or --run ID's), and the list of runs",
    "sandbox": "real local servers standing in for RDS, EC2 and the app tier (up|status|down|server|rds-applier)",
    "demo": "sandbox + plan + start + cutover under a live probe + report",
}
NOT_BUILT: set[str] = set()


class Output:
    """Human output on stdout (rich), or one JSON document with --json."""

    def __init__(self, as_json: bool):
        self.as_json = as_json
        from rich.console import Console

        self.console = Console(highlight=False, soft_wrap=True)

    def emit(self, data: Any, human: Callable[[Any], None]) -> None:
        if self.as_json:
            print(json.dumps(data, indent=2, default=str))
        else:
            human(data)


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Flags every command takes, before or after the command name (sub-parsers must not reset them)."""
    default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=default(False), help="machine-readable output on stdout")
    common.add_argument("--log-format", choices=("console", "json"), default=default("console"),
                        help="structured logs on stderr (default: console)")
    common.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=default("info"))
    return common


def build_parser() -> argparse.ArgumentParser:
    top, common = _common(suppress=False), _common(suppress=True)

    parser = argparse.ArgumentParser(
        prog="migrate", parents=[top],
        description="Move a live MySQL/MariaDB database off Amazon RDS onto self-managed servers on EC2 "
                    "with seconds of write downtime, rehearsed and measured.",
        epilog="Exit codes: 0 done/go, 1 checks failed/no-go, 2 bad input, 3 failed and rolled back safely, "
               "4 failed and needs a human.")
    parser.add_argument("--version", action="version", version=f"migrate {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for name in ("plan", "start", "status", "verify", "rehearse", "cutover", "rollback", "heartbeat", "report"):
        p = sub.add_parser(name, parents=[common], help=COMMANDS[name], description=COMMANDS[name])
        p.add_argument("-p", "--playbook", required=True, help="the migration's playbook (YAML)")
        if name == "status":
            p.add_argument("--watch", action="store_true",
                           help="refresh every second until interrupted, writing the heartbeat meanwhile")
        if name in ("cutover", "rollback", "rehearse"):
            p.add_argument("--dry-run", action="store_true", help="print the ordered steps; change nothing")
            p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if name == "verify":
            p.add_argument("--tables", nargs="+", metavar="SCHEMA.TABLE",
                           help="compare only these tables (a partial verify does not satisfy cutover.require_verify)")
        if name == "report":
            p.add_argument("--run", help="a run id (or its directory under runs/): that run's report, not the latest")
        if name in ("plan", "start"):
            p.add_argument("--allow-nonempty-target", action="store_true",
                           help="the target may hold databases of its own (the seed replaces the ones it copies)")

    sandbox = sub.add_parser("sandbox", parents=[common], help=COMMANDS["sandbox"], description=COMMANDS["sandbox"])
    sandbox_sub = sandbox.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("up", "start the sandbox (resumes an interrupted one)"),
                         ("status", "show what runs and where"),
                         ("down", "stop every process and delete the directory"),
                         ("server", "stop or start one of the sandbox's database servers (its service control)"),
                         ("rds-applier", "how long the RDS source takes to apply its parameter group's changes "
                                         "(shown, or set with --delay)")):
        p = sandbox_sub.add_parser(action, parents=[common], help=text, description=text)
        p.add_argument("--dir", required=True, type=Path, help="the sandbox's directory")
        if action == "up":
            p.add_argument("--rows", type=_positive_int, default=None, help="orders to load (default 10,000)")
            _sandbox_options(p)
        if action == "server":
            p.add_argument("verb", choices=("stop", "start"))
            p.add_argument("--name", required=True, choices=("source", "replica", "target", "rehearsal"))
        if action == "rds-applier":
            p.add_argument("--delay", metavar="SECONDS|never", default=None,
                           help="seconds from a change of the parameter group to the server's, or never")

    demo = sub.add_parser("demo", parents=[common], help=COMMANDS["demo"], description=COMMANDS["demo"])
    demo.add_argument("--dir", type=Path, default=Path(".sandbox"), help="the sandbox's directory (replaced)")
    demo.add_argument("--rows", type=_positive_int, default=None, help="orders to load (default 10,000)")
    _sandbox_options(demo)
    return parser


def _sandbox_options(p: argparse.ArgumentParser) -> None:
    from migrate.sandbox.options import REPOINTS, SOURCES, WRITE_BLOCKS

    p.add_argument("--write-block", choices=WRITE_BLOCKS, default=None,
                   help="how the playbook blocks writes at the cutover (default revoke_and_kill)")
    p.add_argument("--repoint", choices=REPOINTS, default=None,
                   help="how the playbook repoints the application (default haproxy)")
    p.add_argument("--source", choices=SOURCES, default=None,
                   help="an RDS-like source (default) or a self-managed MariaDB reached over SSH")


def _options(args: argparse.Namespace):
    """The sandbox options the flags give; None when none is given (an existing sandbox keeps its own)."""
    from migrate.sandbox.options import Options

    given = {k: v for k, v in (("write_block", args.write_block), ("repoint", args.repoint),
                               ("source", args.source)) if v is not None}
    if not given:
        return None
    if "write_block" not in given and given.get("source") == "self-managed":
        given["write_block"] = "read_only"
    return Options(**given)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log.configure(args.log_format, args.log_level)
    out = Output(args.json)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return dispatch(args, out)
    except MigrateError as exc:
        return _fail(out, exc.exit_code, str(exc), type(exc).__name__)
    except KeyboardInterrupt:
        return _fail(out, ExitCode.NEEDS_HUMAN, "interrupted; rerun the same command to resume", "Interrupted")


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _fail(out: Output, code: int, message: str, kind: str) -> int:
    message = log.redact(message)
    if out.as_json:
        print(json.dumps({"ok": False, "exit_code": code, "error": kind, "message": message}, indent=2))
    else:
        from rich.markup import escape

        out.console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    return code


def dispatch(args: argparse.Namespace, out: Output) -> int:
    if args.command == "sandbox":
        return _sandbox(args, out)
    if args.command == "demo":
        return _demo(args, out)
    if args.command in ("plan", "start", "status", "verify", "cutover", "rollback", "report", "rehearse",
                        "heartbeat"):
        from migrate.capabilities import inputs
        from migrate.capabilities.migration import Migration

        migration = Migration(load_playbook(args.playbook), path=str(args.playbook))
        if not getattr(args, "dry_run", False):
            inputs.check(migration, args.command)
        if args.command in ("cutover", "rollback"):
            return _switch(migration, args, out)
        return globals()[f"_{args.command}"](migration, args, out)
    if args.command in NOT_BUILT:
        if getattr(args, "playbook", None):
            load_playbook(args.playbook)  # a bad playbook is reported (exit 2) even before the command exists
        raise NotBuiltYet(f"`migrate {args.command}` is not built yet",
                          hint="see `migrate --help`; `migrate sandbox up --dir DIR` works today")
    raise NotBuiltYet(f"unknown command {args.command}")


def _plan(m, args: argparse.Namespace, out: Output) -> int:
    from migrate.workflows import plan

    result = plan.run(m, allow_nonempty_target=args.allow_nonempty_target)
    out.emit(result, lambda r: _render_checks(out, r))
    return ExitCode.OK if result["verdict"] == "go" else ExitCode.NO_GO


def _render_checks(out: Output, r: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"plan: {r['name']}", title_justify="left", show_lines=False)
    for col in ("check", "status", "evidence / what to do"):
        table.add_column(col, overflow="fold")
    colour = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
    for c in r["checks"]:
        text = escape(c["evidence"]) + (f"\n[dim]-> {escape(c['fix'])}[/]" if c["fix"] else "")
        table.add_row(c["id"], f"[{colour[c['status']]}]{c['status']}[/]", text)
    out.console.print(table)
    seed = r["plan"]["seed"]
    out.console.print(f"seed: {seed['method']} with {seed['tool']}: {seed['why']}", markup=False)
    out.console.print("start: " + " -> ".join(s["step"] for s in r["plan"]["start"]), markup=False)
    out.console.print("replication filters start sets on the target: " + ", ".join(
        f"{k}={v}" for k, v in r["plan"]["replication_filters"].items()), markup=False)
    out.console.print("cutover: " + " -> ".join(s["step"] + (" (point of no return)" if s.get("point_of_no_return")
                                                              else "") for s in r["plan"]["cutover"]), markup=False)
    e = r["estimates"]
    catch_up = f"{e['catch_up_s']:.0f} s" if e["catch_up_s"] is not None else "never (writes outpace the replica)"
    out.console.print(f"estimates: {e['data_mb']:,.1f} MB; seed ~{e['seed_s']:.0f} s at {e['seed_mb_per_s']} MB/s; "
                      f"binlog {e['binlog_mb_per_s']:.3f} MB/s, catch-up ~{catch_up}; cutover write downtime "
                      f"~{e['cutover_downtime_ms']:.0f} ms after {e['stable_wait_s']:g} s of gates; binlog retention "
                      f"needed {e['retention_needed_h']} h ({e['figures']})", markup=False)
    verdict = "[bold green]GO[/]" if r["verdict"] == "go" else f"[bold red]NO-GO[/] (failed: {', '.join(r['failed'])})"
    out.console.print(f"verdict: {verdict}")


def _start(m, args: argparse.Namespace, out: Output) -> int:
    from migrate.workflows import start

    result = start.run(m, allow_nonempty_target=args.allow_nonempty_target)
    out.emit(result.as_dict(), lambda r: _render_run(out, r, title=f"start: {m.pb.name}"))
    if not out.as_json:
        out.console.print(f"next: migrate status -p {m.path} --watch until caught up, then migrate rehearse -p {m.path}, "
                          f"then migrate cutover -p {m.path}", markup=False)
    return ExitCode.OK


def _status(m, args: argparse.Namespace, out: Output) -> int:
    from migrate.workflows import status

    if not args.watch:
        report = status.read(m)
        out.emit(report, lambda r: out.console.print(_status_view(r)))
        return ExitCode.OK if "error" not in report else ExitCode.NEEDS_HUMAN
    from rich.live import Live

    from migrate.workflows import heartbeat

    report, sample = status.snapshot(m, None)
    with heartbeat.writer(m, "migrate status --watch"), \
            (Live(_status_view(report), console=out.console, auto_refresh=False) if not out.as_json else
             _Lines(out)) as view:
        try:
            while True:
                view.update(_status_view(report) if not out.as_json else report, refresh=True)
                time.sleep(WATCH_EVERY_S)
                report, sample = status.snapshot(m, sample)
        except KeyboardInterrupt:
            return ExitCode.OK


WATCH_EVERY_S = 1.0


class _Lines:
    """`status --watch --json`: one JSON document per line, per refresh."""

    def __init__(self, out: Output):
        self.out = out

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, report: dict, refresh: bool = True) -> None:
        print(json.dumps(report, default=str), flush=True)


def _heartbeat(m, args: argparse.Namespace, out: Output) -> int:
    """In the foreground until SIGTERM or Ctrl-C; one line each time what it does changes."""
    from migrate.workflows import heartbeat

    def say(state: str) -> None:
        line = {"heartbeat": state, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        print(json.dumps(line) if out.as_json else f"{line['at']} heartbeat: {state}", flush=True)

    writer = heartbeat.writer(m, "migrate heartbeat", say).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        writer.stop()
    say(f"stopped: {writer.written} written, {writer.failed} failed")
    return ExitCode.OK


def _verify(m, args: argparse.Namespace, out: Output) -> int:
    from migrate.workflows import verify

    for name in args.tables or []:
        if name.count(".") != 1 or not all(name.split(".")):
            raise BadInput(f"--tables {name}: name a table as schema.table")
    result = verify.run(m, tables=args.tables)
    out.emit(result, lambda r: _render_verify(out, r))
    return ExitCode.OK if result["clean"] else ExitCode.NO_GO


def _render_verify(out: Output, r: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"verify: {r['replica']} against {r['primary']}", title_justify="left")
    for col in ("table", "key", "rows", "chunks", "result"):
        table.add_column(col)
    for t in r["tables"]:
        verdict = ("[bold red]DIFFERS[/]" if t["differing_rows"] else "[yellow]unconfirmed[/]" if t["unverified_rows"]
                   else "[green]same[/]")
        table.add_row(escape(t["table"]), escape(", ".join(t["key"]) or "(none: whole)"), f"{t['rows']:,}",
                      str(t["chunks"]), verdict)
    out.console.print(table)
    for d in r["differences"]:
        if d["kind"] in ("rows", "rows_differ"):
            kinds: dict[str, int] = {}
            for row in d["rows"]:
                kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
            shown = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
            out.console.print(f"DIFFERS {d['table']}: keys {d['first_key']} .. {d['last_key']}: "
                              f"{d['differing_rows']} row(s) ({shown}); e.g. "
                              + ", ".join(f"{row['key']} ({row['kind']})" for row in d["rows"][:5]), markup=False)
        else:
            out.console.print(f"DIFFERS {d['table']}: {d['kind']}: {d['detail']}", markup=False)
    for u in r["unverified"]:
        out.console.print(f"UNCONFIRMED {u['table']}: keys {u['first_key']} .. {u['last_key']}: {u['detail']}",
                          markup=False)
    for w in r["warnings"]:
        out.console.print(f"[yellow]warning:[/] {escape(w)}")
    t = r["totals"]
    out.console.print(f"{r['summary']} ({t['rows_per_s'] or 0:,} rows/s); report: {r['report']}", markup=False)


CONFIRM = {
    "cutover": "Cut over {name} now? The application's writes will be blocked briefly. [y/N] ",
    "rollback": "Roll {name} back to the source now? The application's writes will be blocked briefly. [y/N] ",
}


def _switch(m, args: argparse.Namespace, out: Output) -> int:
    from migrate.workflows import switch

    workflow = args.command
    if args.dry_run:
        steps = switch.plan(m, workflow)
        out.emit({"dry_run": True, "workflow": workflow, "steps": steps},
                 lambda r: _render_plan(out, workflow, r["steps"]))
        return ExitCode.OK
    if not args.yes:
        if not sys.stdin.isatty():
            raise BadInput(f"the {workflow} blocks the application's writes: confirm with --yes when not at a terminal")
        answer = input(CONFIRM[workflow].format(name=m.pb.name))
        if answer.strip().lower() not in ("y", "yes"):
            raise BadInput(f"{workflow} not confirmed; nothing was changed")
    result = switch.run(m, workflow)
    if result.get("already"):
        out.emit(result, lambda r: out.console.print(r["summary"], markup=False))
        return ExitCode.OK
    title = f"{workflow}{' undone' if result.get('undone') else ''}: {m.pb.name}"
    out.emit(result, lambda r: (_render_run(out, {"steps": r["report"]["steps"]}, title=title),
                                out.console.print(r["summary"], markup=False)))
    return ExitCode.OK


def _rehearse(m, args: argparse.Namespace, out: Output) -> int:
    from migrate.workflows import rehearse

    if args.dry_run:
        steps = rehearse.plan(m)
        out.emit({"dry_run": True, "workflow": "rehearse", "steps": steps},
                 lambda r: _render_plan(out, "rehearse", r["steps"]))
        return ExitCode.OK
    result = rehearse.run(m)
    out.emit(result, lambda r: (_render_run(out, {"steps": r["report"]["steps"]}, title=f"rehearse: {m.pb.name}"),
                                out.console.print(r["summary"], markup=False)))
    return ExitCode.OK


def _report(m, args: argparse.Namespace, out: Output) -> int:
    from migrate.capabilities import report

    data = report.load_report(m.pb.run_dir, args.run)
    data["runs"] = report.list_runs(m.pb.run_dir)

    def show(r: dict[str, Any]) -> None:
        out.console.print(Path(r["files"]["markdown"]).read_text(), markup=False)
        out.console.print("runs (`--run ID` shows one):", markup=False)
        for run in r["runs"]:
            ms = run["write_downtime_ms"]
            out.console.print(f"  {run['run']}  {run['status']}  {run['generated_at']}"
                              + (f"  write downtime {ms:.0f} ms" if ms is not None else ""), markup=False)
        if r["files"].get("timeline"):
            out.console.print(f"timeline: {r['files']['timeline']}", markup=False)

    out.emit(data, show)
    return ExitCode.OK


def _demo(args: argparse.Namespace, out: Output) -> int:
    from migrate.workflows import demo

    say = (lambda text: print(text, file=sys.stderr)) if out.as_json else out.console.print
    result = demo.run(args.dir, rows=args.rows, options=_options(args), say=say)
    out.emit(result, lambda r: (_render_run(out, {"steps": r["report"]["steps"]}, title="demo cutover"),
                                out.console.print(r["summary"], markup=False),
                                out.console.print(f"sandbox left running: migrate sandbox down --dir {r['sandbox']}")))
    return ExitCode.OK


def _render_run(out: Output, run: dict[str, Any], *, title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("step", "status", "seconds", "what it did"):
        table.add_column(col)
    for step in run["steps"]:
        table.add_row(escape(step["name"]), step["status"], f"{step.get('duration_s') or 0:.3f}",
                      escape(step.get("message") or ""))
    out.console.print(table)


def _render_plan(out: Output, workflow: str, steps: list[dict[str, Any]]) -> None:
    from rich.markup import escape

    out.console.print(f"{workflow} --dry-run: the steps, in order; nothing was changed")
    for i, step in enumerate(steps, 1):
        mark = "  [bold]<- point of no return[/]" if step["point_of_no_return"] else ""
        out.console.print(f"{i}. {step['step']} (timeout {step['timeout_s']:g} s): {escape(step['does'])}{mark}")


def _status_view(r: dict[str, Any]):
    """`migrate status` for a terminal: the phase, the runs, then every lag figure side by side."""
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    lines: list[Any] = []

    def say(text: str, markup: bool = False) -> None:
        lines.append(Text.from_markup(text) if markup else Text(text))

    colour = "bold red" if r["writes_blocked"] else "bold"
    say(f"[{colour}]{escape(r['phase'])}[/]: {escape(r['says'])}", markup=True)
    say(f"next: {r['next']}")
    if r.get("lock_holder"):
        h = r["lock_holder"]
        say(f"running now: pid {h.get('pid')} on {h.get('host')}, `{h.get('command')}` since {h.get('since')}")
    for name, run in r["runs"].items():
        say(f"{name}: {run['status']} (started {run['started_at']})")
    if r.get("application_endpoint"):
        say(f"application endpoint: {r['application_endpoint']}")
    for warning in r.get("warnings", []):
        say(f"[yellow]warning:[/] {escape(warning)}", markup=True)
    if "error" in r:
        say("cannot read the servers: " + r["error"])
        return Group(*lines)
    rep, lag = r["replication"], r.get("lag")
    if not rep["configured"]:
        say(f"replication: {rep['replica']} does not replicate")
        return Group(*lines)
    state = "[green]healthy[/]" if rep["healthy"] else "[red]NOT healthy[/]"
    say(f"replication: {rep['replica']} from {rep['from']}: {state}  IO thread {rep['io']}, SQL thread {rep['sql']}, "
        f"source {escape(str(rep['source']))}", markup=True)
    for which in ("io", "sql"):
        if rep.get(f"{which}_error"):
            say(f"  last {which.upper()} error: {rep[f'{which}_error']}")
    if rep.get("hint"):
        say(f"  hint: {rep['hint']}")
    if lag:
        lines.append(_lag_table(lag, rep, Table))
    return Group(*lines)


def _lag_table(lag: dict[str, Any], rep: dict[str, Any], table_type):
    def num(value: Any, unit: str = "", digits: int = 0) -> str:
        return "?" if value is None else f"{value:,.{digits}f}{unit}"

    beat = lag["heartbeat"]
    table = table_type(show_header=True, header_style="bold", box=None, pad_edge=False)
    for col in ("lag", "reads", "what it means"):
        table.add_column(col)
    server = lag["seconds_behind"]
    table.add_row("server (Seconds_Behind_Master)", "NULL" if server is None else f"{server} s",
                  "the server's own figure: 0 while the IO thread is behind, NULL once the SQL thread stopped")
    table.add_row("heartbeat", f"{num(lag['heartbeat_s'], ' s', 2)} +-{num(lag['heartbeat_error_s'], ' s', 2)}"
                  if beat["fresh"] else "?",
                  f"{beat['said']}; clock skew {beat['clock_skew_s'] * 1000:+.1f} ms "
                  f"(+-{beat['clock_skew_error_s'] * 1000:.1f})")
    trx = lag["transactions_behind"]
    table.add_row("position", f"{num(lag['bytes_behind'], ' B')}" + ("" if trx is None else f", {trx:,} trx"),
                  "binlog the replica has not applied yet")
    table.add_row("apply rate", f"{num(lag['apply_bytes_per_s'], ' B/s')}"
                  + ("" if lag["apply_transactions_per_s"] is None else f", {lag['apply_transactions_per_s']:,} trx/s"),
                  f"the primary writes {num(lag['source_bytes_per_s'], ' B/s')} (over {lag['rate_window_s']:g} s)")
    table.add_row("catch-up ETA", num(lag["eta_s"], " s", 1), lag["eta_says"])
    table.add_row("relay log", num(rep.get("relay_log_space_bytes"), " B"), "held on the replica")
    retention = lag["retention"]
    table.add_row("binlog retention", "?" if retention["left_s"] is None else f"{retention['left_s'] / 3600:.1f} h left",
                  retention["says"])
    return table


def _sandbox(args: argparse.Namespace, out: Output) -> int:
    from migrate.sandbox import sandbox

    if args.action == "up":
        started = time.monotonic()
        sb, result = sandbox.up(args.dir, args.rows, _options(args))
        report = sandbox.status(sb.dir) | {"up_seconds": round(time.monotonic() - started, 2),
                                           "run": result.as_dict()}
        out.emit(report, lambda r: _render_sandbox(out, r, title="sandbox up"))
        return ExitCode.OK if report["all_running"] else ExitCode.NEEDS_HUMAN
    if args.action == "server":
        server = getattr(sandbox.Sandbox.open(args.dir), args.name)
        server.stop() if args.verb == "stop" else server.start()
        out.emit({"server": args.name, "running": server.running()},
                 lambda r: out.console.print(f"{r['server']}: {'running' if r['running'] else 'stopped'}"))
        return ExitCode.OK
    if args.action == "rds-applier":
        return _rds_applier(sandbox.Sandbox.open(args.dir), args, out)
    if args.action == "status":
        report = sandbox.status(args.dir)
        out.emit(report, lambda r: _render_sandbox(out, r, title="sandbox status"))
        return ExitCode.OK if report["all_running"] else ExitCode.NO_GO
    stopped = sandbox.down(args.dir)
    out.emit({"dir": str(Path(args.dir).resolve()), "stopped": stopped, "removed": True},
             lambda r: out.console.print(f"sandbox down: stopped {', '.join(r['stopped']) or 'nothing'}; "
                                         f"removed {r['dir']}"))
    return ExitCode.OK


def _rds_applier(sb, args: argparse.Namespace, out: Output) -> int:
    from migrate.sandbox import rds_control

    if not sb.applies_parameter_group:
        raise BadInput(f"the sandbox in {sb.dir} does not apply its RDS parameter group (its write block is "
                       f"{sb.options.write_block})", hint="start one with `migrate sandbox up --dir D --write-block "
                                                          "parameter_group`")
    applier = sb.rds_applier
    if args.delay is not None:
        applier.set_delay(rds_control.parse_delay(args.delay))
    delay = applier.delay()
    state = applier.state()
    report = {"running": applier.running(), "delay": "never" if delay is None else delay,
              "group": state.get("group"), "applied": state.get("applied", {}), "pending": state.get("pending", {}),
              "error": state.get("error"), "log": str(applier.log_file)}
    said = "never" if delay is None else f"{delay:g} s after a change"
    out.emit(report, lambda r: out.console.print(
        f"rds-applier: {'running' if r['running'] else 'NOT running'}; parameter group {r['group']} reaches the "
        f"source {said}; applied {r['applied']}" + (f"; pending {r['pending']}" if r["pending"] else "")
        + (f"; error: {r['error']}" if r["error"] else "")))
    return ExitCode.OK


def _render_sandbox(out: Output, report: dict[str, Any], *, title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{title}: {report['dir']}", title_justify="left")
    for col in ("component", "state", "address", "detail"):
        table.add_column(col)
    details = {
        "source": lambda c: f"{c.get('dialect', '')}  {c.get('role', 'stands in for RDS')}",
        "replica": lambda c: f"{c.get('dialect', '')}  stands in for an RDS read replica of the source",
        "target": lambda c: f"{c.get('dialect', '')}  stands in for MySQL on EC2 (read_only)",
        "ssh": lambda c: f"the target's EC2 host; known_hosts {c['known_hosts']}",
        "haproxy": lambda c: f"the application endpoint; admin socket {c['admin_socket']}",
        "rehearsal": lambda c: f"{c.get('dialect', '')}  the fire drill's server (seeded by `migrate rehearse`)",
        "aws": lambda c: "moto: RDS instance, parameter group, Route53 zone",
        "rds_applier": lambda c: f"applies the parameter group to the source, delay {c['delay']}"
                                 + ("" if c["delay"] == "never" else " s")
                                 + (f"; {c['error']}" if c.get("error") else ""),
    }
    for name, comp in report["components"].items():
        state = "[green]running[/]" if comp["running"] else "[dim]stopped[/]" if comp.get("optional") \
            else "[red]stopped[/]"
        table.add_row(name, state, comp.get("address") or comp.get("endpoint_url", ""), escape(details.get(name, lambda c: c.get("detail", ""))(comp)))
    out.console.print(table)
    out.console.print(f"playbook: {report['playbook']}  ({report['rows']:,} orders in schema shop)")
    if "up_seconds" in report:
        out.console.print(f"up in {report['up_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
