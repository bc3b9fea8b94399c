"""The run's report: `report.json` for machines, `report.md` for people, and a line for the terminal.

The write downtime in it is the probe's measurement, stated with how it was measured: the longest gap
between acknowledged writes of an application-side probe, and whether every acknowledged write is on
the new primary. Without a probe the report says the downtime was not measured, never a number.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from migrate import log
from migrate.capabilities import timeline
from migrate.errors import BadInput
from migrate.runner.store import ensure_private_dir, iso_of, now_iso, write_atomic

JSON_NAME = "report.json"
MD_NAME = "report.md"
PNG_NAME = "timeline.png"


def write_report(run_dir: Path, *, workflow: str, run: dict[str, Any], probe: dict[str, Any] | None,
                 facts: dict[str, Any], resumed_block: dict[str, Any] | None = None,
                 latest: bool = True, probe_times: tuple[list[float], list[float]] = ([], []),
                 prediction: dict[str, Any] | None = None, blocked: bool = True,
                 verify: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write the run's own report.json and report.md (0600, atomically) under `run_dir/runs/`, and, when
    `latest`, the same as `run_dir`'s report (what `migrate report` shows); return the paths written last.

    `run` is `RunResult.as_dict()`, `probe` is `ProbeResult.as_dict()` (None when no probe ran);
    `resumed_block`: the write block an earlier run of the same attempt took (see `resumed_gap`);
    `probe_times`: when the probe's writes were acknowledged and when its attempts failed (epoch s), for the
    timeline PNG drawn beside each report (timeline.py); `prediction`: a rehearsal's prediction of the cutover's
    write downtime (prediction.py), or, in a cutover's report, the latest rehearsal's beside the measurement;
    `blocked`: whether the run blocked writes at all (a switch refused at its gates never did: the probe's gaps are
    then its ordinary jitter, and the report says so instead of calling them downtime); `verify`: a verify's
    result (workflows/verify.py), shown as its own section."""
    run_dir = ensure_private_dir(Path(run_dir))
    own = ensure_private_dir(ensure_private_dir(run_dir / "runs") / f"{workflow}-{run.get('run_id')}")
    paths = [(own / JSON_NAME, own / MD_NAME)] + ([(run_dir / JSON_NAME, run_dir / MD_NAME)] if latest else [])
    for json_path, md_path in paths:
        report = _report(workflow, run, probe, facts, resumed_block, json_path, md_path)
        report["write_downtime"]["writes_blocked"] = blocked
        if prediction is not None:
            report["prediction"] = prediction
        if verify is not None:
            report["verify"] = verify
        if timeline.draw(json_path.parent / PNG_NAME, report, *probe_times):
            report["files"]["timeline"] = str(json_path.parent / PNG_NAME)
        else:  # an earlier run's picture must not pass for this one's
            (json_path.parent / PNG_NAME).unlink(missing_ok=True)
        write_atomic(json_path, json.dumps(report, indent=2, default=str) + "\n")
        write_atomic(md_path, render_markdown(report))
    return paths[-1]


def _report(workflow: str, run: dict[str, Any], probe: dict[str, Any] | None, facts: dict[str, Any],
            resumed_block: dict[str, Any] | None, json_path: Path, md_path: Path) -> dict[str, Any]:
    return {
        "workflow": workflow,
        "run_id": run.get("run_id"),
        "generated_at": now_iso(),
        "status": run.get("status"),
        "duration_s": run.get("duration_s"),
        "steps": run.get("steps", []),
        "write_downtime": write_downtime(probe, resumed_block),
        "probe": probe,
        "facts": log.redact_value("facts", facts),
        "files": {"json": str(json_path), "markdown": str(md_path)},
    }


def load_report(run_dir: Path, run: str | None = None) -> dict[str, Any]:
    """The latest report under `run_dir`, or the one of `run` (a run id, or its directory's name under runs/)."""
    where = Path(run_dir) if run is None else _run_dir(Path(run_dir), run)
    path = where / JSON_NAME
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"no report yet in {run_dir}",
                       hint="`migrate cutover -p PLAYBOOK` (or `migrate rehearse`) writes one at its end; "
                            "`migrate demo` makes one on the sandbox") from None
    report["files"] = {"json": str(path), "markdown": str(where / MD_NAME)}  # wherever it is now
    if (where / PNG_NAME).exists():
        report["files"]["timeline"] = str(where / PNG_NAME)
    return report


def list_runs(run_dir: Path) -> list[dict[str, Any]]:
    """Every run's report kept under runs/, oldest first: which run, its outcome and write downtime."""
    found = []
    for path in Path(run_dir).glob(f"runs/*/{JSON_NAME}"):
        with contextlib.suppress(OSError, ValueError):
            r = json.loads(path.read_text())
            found.append(((r.get("generated_at") or "", path.stat().st_mtime_ns), {
                "run": path.parent.name, "workflow": r.get("workflow"), "run_id": r.get("run_id"),
                "status": r.get("status"), "generated_at": r.get("generated_at"),
                "write_downtime_ms": (r.get("write_downtime") or {}).get("longest_gap_ms")
                if (r.get("write_downtime") or {}).get("writes_blocked", True) else None}))
    return [run for _, run in sorted(found, key=lambda x: x[0])]


def latest_prediction(run_dir: Path) -> dict[str, Any] | None:
    """The prediction of the newest rehearsal that finished, naming its run; None when there is none."""
    for run in reversed(list_runs(run_dir)):
        if run["workflow"] == "rehearse" and run["status"] == "done":
            with contextlib.suppress(OSError, ValueError):
                data = json.loads((Path(run_dir) / "runs" / run["run"] / JSON_NAME).read_text())
                if data.get("prediction"):
                    return {**data["prediction"], "rehearsal_run": run["run"], "rehearsed_at": run["generated_at"]}
    return None


def _run_dir(run_dir: Path, run: str) -> Path:
    runs = list_runs(run_dir)
    match = [r for r in runs if run in (r["run"], r["run_id"])]
    if not match:
        raise BadInput(f"no run {run!r} in {run_dir}/runs", hint="one of: " + (", ".join(r["run"] for r in runs)
                                                                          or "none yet"))
    return run_dir / "runs" / match[-1]["run"]


def resumed_gap(blocked_at: float | None, repointed_at: float | None, run_started_at: float,
                first_ack_at: float | None) -> dict[str, Any] | None:
    """The write gap a resumed run's probe cannot see: writes were blocked by an earlier run of the attempt,
    and stayed blocked until that run repointed the application or, when it did not, until this run's probe
    first wrote. None when the block was taken in this run (the probe saw all of it)."""
    if blocked_at is None or blocked_at >= run_started_at:
        return None
    if repointed_at is not None and repointed_at < run_started_at:
        end, how = repointed_at, "until the earlier run repointed the application (at least)"
    elif first_ack_at is not None:
        end, how = first_ack_at, "until this run's probe wrote again"
    else:
        return {"ms": None, "from": iso_of(blocked_at), "to": None,
                "how": "writes blocked by an earlier run and not acknowledged since"}
    return {"ms": round((end - blocked_at) * 1000, 1), "from": iso_of(blocked_at), "to": iso_of(end),
            "how": f"blocked by an earlier run of this attempt, {how}"}


def write_downtime(probe: dict[str, Any] | None, resumed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report's downtime section, from the probe's result and, for a resumed run, the earlier block."""
    if probe is None:
        return {"measured": False, "longest_gap_ms": None, "from": None, "to": None, "failed_attempts": None,
                "acknowledged": None, "lost_acknowledged_writes": None,
                "every_acknowledged_write_on_new_primary": None, "probe_rate": None, "ended_acknowledging": None,
                "resumed_from_block": resumed}
    lost = probe.get("lost_count")
    longest, gap_from, gap_to = probe["max_gap_ms"], probe["max_gap_started_at"], probe["max_gap_ended_at"]
    if resumed and resumed["ms"] is not None and resumed["ms"] > longest:
        longest, gap_from, gap_to = resumed["ms"], resumed["from"], resumed["to"]
    return {
        "measured": True,
        "longest_gap_ms": longest,
        "from": gap_from,
        "to": gap_to,
        "resumed_from_block": resumed,
        "failed_attempts": probe["failed"],
        "acknowledged": probe["acknowledged"],
        "lost_acknowledged_writes": lost,
        "every_acknowledged_write_on_new_primary": None if lost is None else lost == 0,
        "probe_rate": probe["rate"],
        "ended_acknowledging": probe["ended_acknowledging"],
    }


def summary(report: dict[str, Any]) -> str:
    """One or two lines for the terminal."""
    wd = report["write_downtime"]
    head = f"{report['workflow']} {report['status']}"
    if report.get("duration_s") is not None:
        head += f" in {report['duration_s']:.1f} s"
    if not wd["measured"]:
        text = f"{head}: write downtime not measured (no probe ran)"
    elif not wd.get("writes_blocked", True):
        text = (f"{head}: writes were never blocked (the probe's longest gap, {_num(wd['longest_gap_ms'])} ms, is its "
                f"ordinary jitter), {_num(wd['acknowledged'])} acknowledged writes")
    else:
        how = f"longest gap between acknowledged writes, probe at {_rate(wd['probe_rate'])}/s"
        at_least = "" if wd["ended_acknowledging"] else "at least "
        text = f"{head}: write downtime {at_least}{_num(wd['longest_gap_ms'])} ms ({how}), "
        if wd["lost_acknowledged_writes"] is None:
            text += f"{_num(wd['acknowledged'])} acknowledged writes (not checked on the new primary)"
        else:
            lost = wd["lost_acknowledged_writes"]
            text += f"{_num(lost)} of {_num(wd['acknowledged'])} acknowledged writes {'LOST' if lost else 'lost'}"
        if not wd["ended_acknowledging"]:
            text += "\nwrites were still failing when the probe stopped"
    p = report.get("prediction")
    if p:
        text += f"\npredicted write downtime {_num(p['write_downtime_ms'])} ms" + (
            f" (rehearsal {p['rehearsal_run']})" if p.get("rehearsal_run") else "") + (
            f", measured {_num(p['measured_ms'])} ms" if p.get("measured_ms") is not None else "") + (
            f", error {p['error_ms']:+.0f} ms" if p.get("error_ms") is not None else "") + (
            f"; {len(p['untimed'])} part(s) of the window not timed (named in the report)" if p.get("untimed") else "")
    files = report.get("files", {})
    where = "".join(f"; {what}: {files[key]}" for what, key in (("report", "markdown"), ("timeline", "timeline"))
                    if files.get(key))
    return text + where


def render_markdown(report: dict[str, Any]) -> str:
    lines = [f"# migrate {report['workflow']}: {report['status']}", "",
             f"Run `{report['run_id']}`, {_seconds(report.get('duration_s'))}; report generated "
             f"{report['generated_at']}.", ""]
    if report.get("files", {}).get("timeline"):
        lines += [f"![timeline: the steps on one time axis, the probe's writes, the longest write gap shaded]"
                  f"({PNG_NAME})", ""]
    lines += ["## Steps", "", "| step | status | seconds | what it did |", "|---|---|---:|---|"]
    for step in report["steps"]:
        lines.append(f"| {_cell(step.get('name'))} | {_cell(step.get('status'))} | "
                     f"{_cell(_num(step.get('duration_s'), 2))} | {_cell(step.get('message'))} |")
    downtime = (_downtime_md(report["write_downtime"], report.get("probe"))
                if report["workflow"] not in ("start", "verify") else [])
    lines += ["", *downtime]
    if report.get("verify"):
        lines += ["", *_verify_md(report["verify"])]
    if report.get("prediction"):
        lines += ["", *_prediction_md(report["prediction"])]
    lines += ["", "## Facts", ""]
    facts = report.get("facts") or {}
    if facts:
        lines += ["| fact | value |", "|---|---|"]
        lines += [f"| {_cell(k)} | {_cell(_fact(v))} |" for k, v in facts.items()]
    else:
        lines.append("None recorded.")
    return "\n".join(lines) + "\n"


def _downtime_md(wd: dict[str, Any], probe: dict[str, Any] | None) -> list[str]:
    lines = ["## Write downtime", ""]
    if not wd["measured"] or probe is None:
        return [*lines, "Not measured: no write probe ran during this run."]
    rate = probe["rate"]
    if not wd.get("writes_blocked", True):
        lines += ["Writes were never blocked in this run (it stopped before its write block): there was no write "
                  f"downtime. The probe's longest gap between acknowledged writes was {_num(wd['longest_gap_ms'])} ms, "
                  "its ordinary jitter.", ""]
    lines += [
        f"**{_num(wd['longest_gap_ms'])} ms**{'' if wd['ended_acknowledging'] else ' at least'}: the longest "
        f"interval between two acknowledged writes, from {wd['from']} to {wd['to']}.", "",
        f"How it was measured: a probe connected as an application account to the application's endpoint "
        f"and wrote one sequence-numbered row every {_num(1000 / rate, 1)} ms ({_rate(rate)}/s) into "
        "`_migrate.probe`, reconnecting after every failed write and trying again every 5 ms for the first 2 s "
        "of an outage (as a connection pool retries). The gap is measured between the moments "
        "the probe received the server's acknowledgements, from its first acknowledged write (its own start-up, "
        f"{_num(probe.get('first_ack_after_ms'))} ms, is not downtime) to its stop, the interval after its last "
        "acknowledged write included, so a lockout is counted whole, not only the gaps between writes that "
        "succeeded.", "",
        f"- attempts {_num(probe['attempts'])}, acknowledged {_num(probe['acknowledged'])}, "
        f"failed {_num(probe['failed'])}, from {probe['started_at']} to {probe['ended_at']}",
    ]
    if wd["ended_acknowledging"]:
        lines.append("- the probe ended acknowledging: writes were succeeding again when it stopped")
    else:
        lines.append("- **the probe ended while writes still failed**: the downtime is at least the gap above")
    if wd.get("resumed_from_block"):
        r = wd["resumed_from_block"]
        lines.append(f"- this run resumed an attempt whose writes were blocked at {r['from']} by an earlier run: "
                     f"{_num(r['ms'])} ms {r['how']}; the downtime above counts it")
    gaps = probe.get("gaps_over_100ms") or []
    if gaps:
        lines.append("- gaps over 100 ms: " + "; ".join(f"{_num(g['ms'])} ms from {g['from']} to {g['to']}"
                                                         for g in gaps))
    lines += ["", "## Lost writes", ""]
    lost = wd["lost_acknowledged_writes"]
    if lost is None:
        lines.append("Not checked: the acknowledged writes were not looked for on the new primary.")
    elif lost == 0:
        lines.append(f"None: all {_num(wd['acknowledged'])} acknowledged writes are on the new primary.")
    else:
        shown = ", ".join(str(s) for s in (probe.get("lost") or [])[:20])
        lines.append(f"**{_num(lost)} of {_num(wd['acknowledged'])} acknowledged writes are missing on the new "
                     f"primary** (probe run `{probe['run_id']}`, seq {shown}{', ...' if lost > 20 else ''}).")
    lines += ["", "## Errors the probe saw", ""]
    errors = probe.get("errors") or []
    if not errors:
        return [*lines, "None."]
    lines += ["| count | during | code | message |", "|---:|---|---|---|"]
    lines += [f"| {e['count']} | {_cell(e.get('during'))} | {_cell(e.get('code'))} | {_cell(e.get('message'))} |"
              for e in errors]
    return lines


def _verify_md(v: dict[str, Any]) -> list[str]:
    t = v["totals"]
    lines = ["## Verify", "",
             f"{v['replica']} compared with {v['primary']}: {t['tables']} table(s), {_num(t['rows'])} rows in "
             f"{_num(t['chunks'])} chunk(s), {_num(t['rows_per_s'])} rows/s; {t['rechecked_chunks']} chunk(s) "
             f"re-checked. **{'No difference.' if v['clean'] else 'NOT CLEAN.'}**", "",
             "| table | key | rows | chunks | differing rows | unconfirmed rows |", "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {_cell(x['table'])} | {_cell(', '.join(x['key']) or '(none: compared whole)')} | {_num(x['rows'])} | "
              f"{_num(x['chunks'])} | {_num(x['differing_rows'])} | {_num(x['unverified_rows'])} |" for x in v["tables"]]
    if v["differences"]:
        lines += ["", "### Differences", "", "| table | kind | first key | last key | rows | detail |",
                  "|---|---|---|---|---:|---|"]
        lines += [f"| {_cell(d['table'])} | {_cell(d['kind'])} | {_cell(_fact(d['first_key']))} | "
                  f"{_cell(_fact(d['last_key']))} | {_num(d['differing_rows'])} | {_cell(d.get('detail'))} |"
                  for d in v["differences"]]
    if v["unverified"]:
        lines += ["", "### Not confirmed either way", ""]
        lines += [f"- {u['table']}: {u['rows']} row(s) between {_fact(u['first_key'])} and {_fact(u['last_key'])}: "
                  f"{u['detail']}" for u in v["unverified"]]
    if v["warnings"]:
        lines += ["", "### Warnings", "", *[f"- {w}" for w in v["warnings"]]]
    return lines


def _prediction_md(p: dict[str, Any]) -> list[str]:
    lines = ["## Predicted write downtime of the cutover", ""]
    if p.get("rehearsal_run"):
        lines.append(f"From the rehearsal `{p['rehearsal_run']}` ({p.get('rehearsed_at')}).")
    lines.append(f"**{_num(p['write_downtime_ms'])} ms predicted**: {p['how']}.")
    if "measured_ms" in p:
        error = "" if p.get("error_ms") is None else (
            f"; error {p['error_ms']:+.0f} ms ({_num(p.get('error_pct'))} %), "
            f"{'within' if p.get('within_goal') else 'OUTSIDE'} the goal (25 % or 100 ms, whichever is larger)")
        lines.append(f"**{_num(p['measured_ms'])} ms measured** by this run's probe{error}.")
    lines += ["", "| part of the window | ms | where the figure comes from |", "|---|---:|---|",
              f"| the drill's measured write gap | {_num(p['drill_gap_ms'])} | its probe, timed for real |"]
    lines += [f"| {_cell(t['term'])} | {_num(t['ms']) if t['ms'] is not None else 'not timed'} | "
              f"{_cell(t['source'])} |" for t in p["terms"]]
    if p.get("untimed"):
        lines += ["", "Not in the figure (named, not timed): " + "; ".join(p["untimed"]) + "."]
    return lines


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}" if digits or isinstance(value, float) else f"{value:,}"
    return str(value)


def _rate(value: float) -> str:
    return f"{value:g}"


def _seconds(value: Any) -> str:
    return "duration unknown" if value is None else f"{value:,.1f} s"


def _fact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _cell(value: Any) -> str:
    """A markdown table cell: pipes escaped, one line."""
    return "" if value is None else " ".join(str(value).replace("|", "\\|").split())
