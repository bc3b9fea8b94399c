"""Where the migration stands: one record in the run state that every command checks before it acts.

    new           nothing done yet                                     start
    seeding       `start` is seeding the target                        start (resumes)
    replicating   the target is a read-only replica of the source      start (checks, repairs), cutover
    cutting_over  a cutover is under way, or died in its middle        cutover (finishes), rollback (undoes)
    cut_over      the application writes on the target                 rollback
    rolling_back  a rollback is under way, or died in its middle       rollback (finishes), cutover (undoes)
    rolled_back   the target replicates from the source again          start, cutover

Beside the phase the record says where the application points (`app_on`), on which servers the
application may write (`writable`), and which run (`attempt`) holds the facts of a switch in progress,
so `status` can say plainly when writes are blocked and a command never acts on another run's facts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from migrate.errors import Refused
from migrate.runner.store import now_iso

PHASES = ("new", "seeding", "replicating", "cutting_over", "cut_over", "rolling_back", "rolled_back")
SWITCHING = {"cutover": "cutting_over", "rollback": "rolling_back"}
HISTORY_KEPT = 30


@dataclass
class Phase:
    phase: str = "new"
    app_on: str = "source"  # where the application endpoint leads: source | target
    writable: list[str] = field(default_factory=lambda: ["source"])  # where the application may write
    attempt: str | None = None  # the run (attempt id) of the switch in progress or last finished
    workflow: str | None = None  # cutover | rollback, for a switch
    since: str = field(default_factory=now_iso)
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def writes_blocked(self) -> bool:
        return self.app_on not in self.writable

    @property
    def primary(self) -> str:
        """The server whose data is the truth now: where the application points."""
        return self.app_on

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read(state: dict[str, Any]) -> Phase:
    """The phase record of a state; for a state written before the record existed, inferred from its runs."""
    data = state.get("data", {}).get("phase")
    if data:
        return Phase(**{k: v for k, v in data.items() if k in Phase.__dataclass_fields__})
    runs = state.get("runs", {})
    cut = runs.get("cutover", {}).get("status")
    if cut == "done":
        return Phase("cut_over", "target", ["target"])
    if cut in ("running", "failed", "rollback_failed"):
        return Phase("cutting_over", "source", [], workflow="cutover")
    start = runs.get("start", {}).get("status")
    if start == "done":
        return Phase("replicating")
    if start in ("running", "failed"):
        return Phase("seeding")
    return Phase()


def write(state: dict[str, Any], phase: Phase, *, why: str) -> Phase:
    """Set `phase` in `state` (the caller saves it), keeping a short history of transitions."""
    old = read(state)
    phase.history = (old.history + [{"at": now_iso(), "from": old.phase, "to": phase.phase, "why": why}]
                     )[-HISTORY_KEPT:] if old.phase != phase.phase else old.history
    if old.phase != phase.phase:
        phase.since = now_iso()
    state.setdefault("data", {})["phase"] = phase.as_dict()
    return phase


def update(state: dict[str, Any], why: str, **changes: Any) -> Phase:
    """Change some fields of the current record (e.g. `app_on` after a repoint)."""
    current = read(state)
    for key, value in changes.items():
        setattr(current, key, value)
    return write(state, current, why=why)


# -- what each command may do in each phase ----------------------------------------------------------

def sentence(p: Phase) -> str:
    """The phase in words, with where writes go."""
    where = {"source": "the source", "target": "the target"}
    text = {
        "new": "nothing has been done yet",
        "seeding": "`migrate start` has begun seeding the target",
        "replicating": "the target is a read-only replica of the source",
        "cutting_over": f"a cutover is under way or died in its middle (run {p.attempt})",
        "cut_over": "cut over: the target is the primary",
        "rolling_back": f"a rollback is under way or died in its middle (run {p.attempt})",
        "rolled_back": "rolled back: the target is a read-only replica of the source again",
    }[p.phase]
    if p.writes_blocked:
        blocked = f"WRITES ARE BLOCKED: the application points at {where[p.app_on]}, where the write block holds"
        return f"{text}; {blocked}"
    return f"{text}; the application writes on {where[p.app_on]} (since {p.since})"


def check_start(p: Phase, playbook: str) -> None:
    """`start` only while the source is the primary and no switch is in its middle: it seeds and configures
    the target as a replica, which would destroy a target that is (or is becoming) the primary."""
    if p.phase in ("new", "seeding", "replicating", "rolled_back"):
        return
    if p.phase in ("cut_over",):
        raise Refused(f"`migrate start` refused: the migration is cut over since {p.since}: the target is the "
                      "primary and `start` would make it a replica of the old source again, overwriting newer data",
                      hint=f"to go back to the source, run `migrate rollback -p {playbook}`")
    raise Refused(f"`migrate start` refused: {sentence(p)}",
                  hint=f"finish it with `migrate {p.workflow} -p {playbook}`, or undo it with "
                       f"`migrate {'rollback' if p.workflow == 'cutover' else 'cutover'} -p {playbook}`")


READY = {"cutover": ("replicating", "rolled_back"), "rollback": ("cut_over",)}  # where each switch may begin


def switch_action(p: Phase, workflow: str, playbook: str) -> str:
    """What `migrate cutover` / `migrate rollback` does in this phase: "run" (a new switch or the resumed one),
    "undo" (the opposite switch died before its point of no return), "already" (nothing to do); or it refuses."""
    opposite = "rollback" if workflow == "cutover" else "cutover"
    if p.phase == SWITCHING[workflow]:
        return "run"
    if p.phase == SWITCHING[opposite]:
        old = "source" if opposite == "cutover" else "target"
        if p.app_on != old:
            raise Refused(f"`migrate {workflow}` refused: {sentence(p)}, and that {opposite} already repointed the "
                          "application, past its point of no return",
                          hint=f"finish it first: `migrate {opposite} -p {playbook}`, then run `migrate {workflow}`")
        return "undo"
    if p.phase in READY[workflow]:
        return "run"
    done = {"cutover": "cut_over", "rollback": "rolled_back"}[workflow]
    if p.phase == done:
        return "already"
    if workflow == "cutover":
        raise Refused(f"`migrate cutover` refused: {sentence(p)}; the target is not a replica yet",
                      hint=f"run `migrate start -p {playbook}` first, then wait for it to catch up "
                           f"(`migrate status -p {playbook}`)")
    raise Refused(f"`migrate rollback` refused: nothing to roll back: {sentence(p)}",
                  hint=f"`migrate status -p {playbook}` shows where the migration stands")
