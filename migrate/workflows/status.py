"""`migrate status`: where the runs are, and the replica's health and lag, read fresh from the servers."""

from __future__ import annotations

from typing import Any

from migrate.capabilities import replication
from migrate.errors import MigrateError
from migrate.workflows.context import Migration


def read(m: Migration) -> dict[str, Any]:
    state = m.store.load_state()
    runs = {name: {"status": r.get("status"), "started_at": r.get("started_at"), "finished_at": r.get("finished_at"),
                   "steps": {n: v.get("status") for n, v in r.get("steps", {}).items()}}
            for name, r in state.get("runs", {}).items()}
    out: dict[str, Any] = {"name": m.pb.name, "runs": runs, "lock_holder": m.store.lock_holder() or None}
    try:
        with m.source() as s, m.target() as t:
            status = replication.read_status(t)
            out["replication"] = _status_dict(status)
            out["lag"] = replication.measure_lag(s, status).as_dict() if status.configured else None
            out["target_read_only"] = bool(t.variable("read_only"))
    except MigrateError as exc:
        out["error"] = str(exc)
    return out


def _status_dict(st) -> dict[str, Any]:
    return {"configured": st.configured, "io": st.io_state, "sql": "running" if st.sql_running else "stopped",
            "healthy": st.healthy, "seconds_behind": st.seconds_behind, "source": f"{st.source_host}:{st.source_port}"
            if st.configured else None, "last_error": st.last_error, "executed_gtid": st.executed_gtid_set,
            "applied": f"{st.exec_source_log_file}:{st.exec_source_log_pos}" if st.configured else None}
