"""The rehearsal's prediction of the real cutover's write downtime, and its comparison with the measurement.

    predicted = the drill's measured write gap + each part of the real window the drill could not time for real

Each term names what it stands for and where its figure comes from; a term that cannot be given a figure is
kept with `ms: None`, so the prediction says what it leaves out instead of looking more precise than it is.
"""

from __future__ import annotations

from typing import Any

# The prediction's goal, as issue 10 states it: within 25% of the measurement or 100 ms, whichever is larger.
GOAL_FRACTION = 0.25
GOAL_MS = 100.0


def predict(*, drill_gap_ms: float, block: dict[str, Any], app_grants: int | None, app_sessions: int,
            drill_repoint: str, cutover_repoint: str, cutover_block: str) -> dict[str, Any]:
    """`block`: what the drill's write block took (`block_timing`: grants, revoke_ms, sessions, kill_ms);
    `app_grants`/`app_sessions`: what the cutover's block would revoke and kill, counted on the source during the
    drill (`app_grants` None when it could not be counted)."""
    revoking = cutover_block == "revoke_and_kill"
    terms = [*([_revoke_term(block, app_grants)] if revoking else []), _kill_term(block, app_sessions),
             _repoint_term(drill_repoint, cutover_repoint)]
    if not revoking:
        terms.append({"term": f"the cutover's write block ({cutover_block}) instead of the drill's revoke",
                      "ms": None, "source": "not timed: the drill blocks with revoke_and_kill on its own account "
                                            "(production's read_only and parameter group are never touched)"})
    terms.append({"term": "rolling back the transactions the application has open when its sessions are killed",
                  "ms": None, "source": "not timed: the drill's sessions are idle; a long transaction's rollback "
                                        "delays the end of the kill by as long as it takes"})
    known = sum(t["ms"] for t in terms if t["ms"] is not None)
    return {"write_downtime_ms": round(drill_gap_ms + known, 1), "drill_gap_ms": round(drill_gap_ms, 1),
            "terms": terms, "untimed": [t["term"] for t in terms if t["ms"] is None],
            "how": "the drill's longest gap between acknowledged writes of its probe, plus the terms with a figure"}


def _revoke_term(block: dict[str, Any], app_grants: int | None) -> dict[str, Any]:
    term = "revoking the write privileges of the application's grants"
    grants, ms = block.get("grants") or 0, float(block.get("revoke_ms") or 0)
    if app_grants is None:
        return {"term": term, "ms": None, "source": "not timed: the application's grants could not be counted"}
    extra = max(app_grants - grants, 0)
    per = ms / max(grants, 1)
    return {"term": f"{term} ({app_grants} grant(s))", "ms": round(per * extra, 1),
            "source": f"the drill revoked {grants} grant(s) in {ms:.1f} ms; scaled to {app_grants} at "
                      f"{per:.2f} ms each" if extra else f"timed for real: the drill revoked {grants} grant(s)"}


def _kill_term(block: dict[str, Any], app_sessions: int) -> dict[str, Any]:
    killed, ms = block.get("sessions") or 0, float(block.get("kill_ms") or 0)
    term = f"killing the application's sessions ({app_sessions} on the source during the drill)"
    if app_sessions <= killed:
        return {"term": term, "ms": 0.0,
                "source": f"timed for real: the drill killed {killed} session(s) in {ms:.1f} ms"}
    per = ms / max(killed, 1)
    return {"term": term, "ms": round(per * (app_sessions - killed), 1),
            "source": f"the drill killed {killed} session(s) in {ms:.1f} ms; scaled to {app_sessions} at "
                      f"{per:.2f} ms each"}


def _repoint_term(drill: str, cutover: str) -> dict[str, Any]:
    if drill == cutover:
        return {"term": f"the repoint ({cutover})", "ms": 0.0,
                "source": f"timed for real: the drill repointed its own endpoint with the same method ({drill})"}
    return {"term": f"the repoint ({cutover})", "ms": None,
            "source": f"not timed: the drill repointed with {drill}, the cutover uses {cutover}"}


def compare(prediction: dict[str, Any], measured_ms: float | None) -> dict[str, Any]:
    """The prediction beside the measurement: the error, and whether it is within the goal."""
    out = dict(prediction)
    out["measured_ms"] = measured_ms
    if measured_ms is None:
        return out
    error = prediction["write_downtime_ms"] - measured_ms
    out["error_ms"] = round(error, 1)
    out["error_pct"] = round(100 * error / measured_ms, 1) if measured_ms else None
    out["within_goal"] = abs(error) <= max(GOAL_FRACTION * measured_ms, GOAL_MS)
    return out
