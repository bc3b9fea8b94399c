"""`migrate status`: where the migration stands (its phase, whether writes are blocked, whether a run is alive
or died), and the replica's health and lag read fresh from the servers, checked against the record."""

from __future__ import annotations

import time
from typing import Any

from migrate.capabilities import lag, phase, replication
from migrate.capabilities.migration import Migration
from migrate.capabilities.repoint import for_migration
from migrate.errors import MigrateError

FOLLOWS_TARGET = ("cut_over", "rolling_back")  # phases in which the source replicates from the target


def read(m: Migration, window_s: float = 1.0) -> dict[str, Any]:
    """One snapshot; rates measured over `window_s`."""
    return snapshot(m, None, window_s)[0]


def snapshot(m: Migration, previous: lag.Sample | None,
             window_s: float = 1.0) -> tuple[dict[str, Any], lag.Sample | None]:
    """One snapshot and its lag sample. Rates are measured against `previous` (status --watch's last sample) or,
    without it, over `window_s` of this call's own."""
    state = m.store.load_state()
    now = phase.read(state)
    alive = m.store.holder_alive()
    holder = m.store.lock_holder() if alive else None
    runs = {}
    for name, r in state.get("runs", {}).items():
        status = r.get("status")
        if status == "running" and not alive:
            status = "died (no process holds the run lock)"
        runs[name] = {"status": status, "attempt": r.get("attempt"), "started_at": r.get("started_at"),
                      "finished_at": r.get("finished_at"),
                      "steps": {n: v.get("status") for n, v in r.get("steps", {}).items()}}
    out: dict[str, Any] = {"name": m.pb.name, "phase": now.phase, "phase_record": now.as_dict(),
                           "says": phase.sentence(now), "writes_blocked": now.writes_blocked,
                           "next": next_command(now, m.path, alive=bool(alive)), "runs": runs, "lock_holder": holder}
    out["warnings"] = []
    now_sample = None
    try:
        out["application_endpoint"] = _endpoint_check(m, now, out["warnings"])
        primary, replica = ("target", "source") if now.phase in FOLLOWS_TARGET else ("source", "target")
        with m.server(primary).session() as p, m.server(replica).session() as r:
            status = replication.read_status(r)
            if status.configured:
                if previous is None:
                    previous = lag.sample(p, status)
                    time.sleep(window_s)
                    status = replication.read_status(r)
                now_sample = lag.sample(p, status)
                out["lag"] = lag.side_by_side(p, r, status, now_sample, previous, rds=m.server(primary).rds)
            else:
                out["lag"] = None
            out["replication"] = {"replica": replica, "from": primary, **_status_dict(status)}
            out[f"{replica}_read_only"] = None if m.server(replica).rds else bool(r.variable("read_only"))
        if status.configured and not status.healthy:
            out["warnings"].append(not_replicating(now, replica, primary, status))
        elif now.phase in ("cut_over", "rolled_back") and not status.healthy:
            direction = "reverse" if now.phase == "cut_over" else "forward"
            out["warnings"].append(f"{direction} replication ({replica} from {primary}) is not configured"
                                   + (": there is no way back without it" if direction == "reverse" else ""))
    except MigrateError as exc:
        out["error"] = str(exc)
    return out, now_sample


def not_replicating(now: phase.Phase, replica: str, primary: str, st) -> str:
    """What a replica that does not replicate is doing, in the server's own words, and what it means."""
    which = {"cut_over": "reverse replication", "rolled_back": "forward replication"}.get(now.phase, "replication")
    doing = (f"reconnecting to {st.source_host}:{st.source_port} by itself" if st.io_state == "connecting" else
             f"IO thread {st.io_state}")
    said = f"; the {replica} says: {st.last_error}" if st.last_error else "; the server reports no error yet"
    back = ": there is no way back without it" if now.phase == "cut_over" else ""
    return (f"{which} ({replica} from {primary}) is not running{back}: {doing}, SQL thread "
            f"{'running' if st.sql_running else 'stopped'}{said}; {replication.hint_for(st)}")


def next_command(p: phase.Phase, path: str, *, alive: bool) -> str:
    pb = f"-p {path}"
    if alive and p.phase in ("seeding", "cutting_over", "rolling_back"):
        return "a run is in progress: wait for it (its progress is in the journal and the log)"
    return {
        "new": f"migrate plan {pb}, then migrate start {pb}",
        "seeding": f"migrate start {pb} (it resumes)",
        "replicating": f"once caught up: migrate rehearse {pb} (the fire drill), then migrate cutover {pb}",
        "cutting_over": (f"migrate cutover {pb} to finish it, or migrate rollback {pb} to undo it"
                         if p.app_on == "source" else f"migrate cutover {pb} to finish it"),
        "cut_over": f"migrate rollback {pb} to go back to the source, if needed",
        "rolling_back": (f"migrate rollback {pb} to finish it, or migrate cutover {pb} to undo it"
                         if p.app_on == "target" else f"migrate rollback {pb} to finish it"),
        "rolled_back": f"migrate cutover {pb} when ready",
    }[p.phase]


def _endpoint_check(m: Migration, p: phase.Phase, warnings: list[str]) -> str | None:
    """Where the repointer says the application points, checked against the record."""
    try:
        now = for_migration(m.pb).current()
    except MigrateError as exc:
        warnings.append(f"cannot read where the application points: {exc.message}")
        return None
    if now is None:
        return None  # a command repoint cannot be read back
    names = {m.server(n).address: n for n in ("source", "target")}
    at = names.get(tuple(now))
    if at is not None and at != p.app_on:
        warnings.append(f"the application endpoint leads to the {at}, but the record says the {p.app_on}: "
                        "something else moved it; check before any switch")
    return f"{now[0]}:{now[1]}" + (f" ({at})" if at else " (neither source nor target)")


def _status_dict(st) -> dict[str, Any]:
    return {"configured": st.configured, "io": st.io_state, "sql": "running" if st.sql_running else "stopped",
            "healthy": st.healthy, "seconds_behind": st.seconds_behind, "source": f"{st.source_host}:{st.source_port}"
            if st.configured else None, "last_error": st.last_error, "executed_gtid": st.executed_gtid_set,
            "applied": f"{st.exec_source_log_file}:{st.exec_source_log_pos}" if st.configured else None,
            "io_error": st.last_io_error or None, "sql_error": st.last_sql_error or None,
            "relay_log_space_bytes": st.relay_log_space,
            "hint": replication.hint_for(st) if st.configured and not st.healthy else None}
