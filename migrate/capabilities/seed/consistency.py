"""How the seed gets one consistent snapshot: `lock` (the dump tool's own locking: FLUSH TABLES WITH READ
LOCK where allowed, LOCK TABLES on every table otherwise) or `replica` (AWS's read-replica procedure)."""

from __future__ import annotations

from migrate.errors import Refused
from migrate.playbook import Playbook


def choose(pb: Playbook, global_lock: bool) -> tuple[str, str]:
    """The method and why; `seed.consistency: auto` decides from what the source allows."""
    wanted, rds = pb.seed.consistency, pb.source.kind == "rds"
    if wanted == "replica" and not rds:
        raise Refused("seed.consistency: replica needs an RDS source (it creates an RDS read replica)",
                      hint="use seed.consistency: lock or auto")
    if wanted != "auto":
        return wanted, "as the playbook asks"
    if global_lock:
        return "lock", "the source allows FLUSH TABLES WITH READ LOCK"
    if rds:
        return "replica", "RDS refuses the global read lock, so the procedure AWS documents: a read replica"
    return "lock", "the global read lock is refused: every dumped table is locked while the dump starts"
