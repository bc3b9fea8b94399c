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
from migrate.errors import ExitCode, MigrateError, NotBuiltYet
from migrate.playbook import load as load_playbook

COMMANDS = {
    "plan": "preflight checks + ordered plan with estimates; go / no-go",
    "start": "seed the target (dump or physical), then start replication",
    "status": "state, replication health, true lag, catch-up ETA",
    "verify": "chunked checksums, source vs target, at consistent points",
    "rehearse": "fire drill: the whole cutover on a rehearsal target, timed, production untouched",
    "cutover": "the timed cutover, in the maintenance window",
    "rollback": "fail back (before the point of no return: undo; after: reverse)",
    "report": "the latest run's report",
    "sandbox": "real local servers standing in for RDS, EC2 and the app tier (up|status|down)",
    "demo": "sandbox + plan + start + cutover under a live probe + report",
}
NOT_BUILT = {"plan", "start", "status", "verify", "rehearse", "cutover", "rollback", "report", "demo"}


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

    for name in ("plan", "start", "status", "verify", "rehearse", "cutover", "rollback", "report"):
        p = sub.add_parser(name, parents=[common], help=COMMANDS[name], description=COMMANDS[name])
        p.add_argument("-p", "--playbook", required=True, help="the migration's playbook (YAML)")
        if name == "status":
            p.add_argument("--watch", action="store_true", help="refresh until interrupted")
        if name == "cutover":
            p.add_argument("--dry-run", action="store_true", help="print the ordered steps; change nothing")
            p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if name == "plan":
            p.add_argument("--allow-nonempty-target", action="store_true")

    sandbox = sub.add_parser("sandbox", parents=[common], help=COMMANDS["sandbox"], description=COMMANDS["sandbox"])
    sandbox_sub = sandbox.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("up", "start the sandbox (resumes an interrupted one)"),
                         ("status", "show what runs and where"),
                         ("down", "stop every process and delete the directory")):
        p = sandbox_sub.add_parser(action, parents=[common], help=text, description=text)
        p.add_argument("--dir", required=True, type=Path, help="the sandbox's directory")
        if action == "up":
            p.add_argument("--rows", type=_positive_int, default=None, help="orders to load (default 10,000)")

    demo = sub.add_parser("demo", parents=[common], help=COMMANDS["demo"], description=COMMANDS["demo"])
    demo.add_argument("--dir", type=Path, default=Path(".sandbox"))
    return parser


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
        out.console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return code


def dispatch(args: argparse.Namespace, out: Output) -> int:
    if args.command == "sandbox":
        return _sandbox(args, out)
    if args.command in NOT_BUILT:
        if getattr(args, "playbook", None):
            load_playbook(args.playbook)  # a bad playbook is reported (exit 2) even before the command exists
        raise NotBuiltYet(f"`migrate {args.command}` is not built yet",
                          hint="see `migrate --help`; `migrate sandbox up --dir DIR` works today")
    raise NotBuiltYet(f"unknown command {args.command}")


def _sandbox(args: argparse.Namespace, out: Output) -> int:
    from migrate.sandbox import sandbox

    if args.action == "up":
        started = time.monotonic()
        sb, result = sandbox.up(args.dir, args.rows)
        report = sandbox.status(sb.dir) | {"up_seconds": round(time.monotonic() - started, 2),
                                           "run": result.as_dict()}
        out.emit(report, lambda r: _render_sandbox(out, r, title="sandbox up"))
        return ExitCode.OK if report["all_running"] else ExitCode.NEEDS_HUMAN
    if args.action == "status":
        report = sandbox.status(args.dir)
        out.emit(report, lambda r: _render_sandbox(out, r, title="sandbox status"))
        return ExitCode.OK if report["all_running"] else ExitCode.NO_GO
    stopped = sandbox.down(args.dir)
    out.emit({"dir": str(Path(args.dir).resolve()), "stopped": stopped, "removed": True},
             lambda r: out.console.print(f"sandbox down: stopped {', '.join(r['stopped']) or 'nothing'}; "
                                         f"removed {r['dir']}"))
    return ExitCode.OK


def _render_sandbox(out: Output, report: dict[str, Any], *, title: str) -> None:
    from rich.table import Table

    table = Table(title=f"{title}: {report['dir']}", title_justify="left")
    for col in ("component", "state", "address", "detail"):
        table.add_column(col)
    details = {
        "source": lambda c: f"{c.get('dialect', '')}  stands in for RDS",
        "target": lambda c: f"{c.get('dialect', '')}  stands in for MySQL on EC2 (read_only)",
        "ssh": lambda c: f"the target's EC2 host; known_hosts {c['known_hosts']}",
        "haproxy": lambda c: f"the application endpoint; admin socket {c['admin_socket']}",
        "aws": lambda c: "moto: RDS instance, parameter group, Route53 zone",
    }
    for name, comp in report["components"].items():
        state = "[green]running[/]" if comp["running"] else "[red]stopped[/]"
        table.add_row(name, state, comp.get("address") or comp.get("endpoint_url", ""), details[name](comp))
    out.console.print(table)
    out.console.print(f"playbook: {report['playbook']}  ({report['rows']:,} orders in schema shop)")
    if "up_seconds" in report:
        out.console.print(f"up in {report['up_seconds']} s")


if __name__ == "__main__":
    sys.exit(main())
