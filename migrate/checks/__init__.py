"""`migrate plan`'s checks: pure functions from facts (read by the inspectors) to verdicts.

Each check has an id, a status (pass / warn / fail / skip), the evidence it saw and, unless it passed, what to
do about it: the exact statement, parameter or command. A check that needs a side which could not be read is
skipped, naming that side: the side's own check carries the failure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Status = Literal["pass", "warn", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    id: str
    status: Status
    evidence: str
    fix: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def passed(id: str, evidence: str) -> Check:
    return Check(id, "pass", evidence)


def warn(id: str, evidence: str, fix: str) -> Check:
    return Check(id, "warn", evidence, fix)


def fail(id: str, evidence: str, fix: str) -> Check:
    return Check(id, "fail", evidence, fix)


def skipped(id: str, unreadable: str) -> Check:
    return Check(id, "skip", f"not checked: the {unreadable} could not be read (see {unreadable}.connect)")


def listing(items: list[str], most: int = 8) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def on(value: object) -> bool:
    return str(value).upper() in ("ON", "1", "YES", "TRUE")
