"""The steps of `migrate verify`: take the inventory of the carried tables, then compare them chunk by chunk.

Every chunk compared is journaled (`verify_chunk`, with the attempt); a verify killed in its middle and run
again resumes the attempt and goes on after the last chunk journaled, each table from its last key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from migrate.adapters.db import Session
from migrate.capabilities import replication
from migrate.capabilities.migration import Migration
from migrate.capabilities.verify import inventory
from migrate.capabilities.verify.chunks import Sizer, decode_key, encode_key, shown_key
from migrate.capabilities.verify.compare import STATEMENT_LIMIT_S, ChunkResult, Comparer
from migrate.capabilities.verify.inventory import Table
from migrate.capabilities.verify.throttle import Throttle
from migrate.errors import Refused
from migrate.runner import RunContext, Step
from migrate.runner.store import now_iso

CHUNK_EVENT = "verify_chunk"
CHECKPOINT_EVERY_S = 30.0
CARRIED_ROWS = 20_000


@dataclass(frozen=True)
class Job:
    """What one verify compares: the primary (whose data is the truth), the replica following it, which tables
    (None: every carried one), and the lag above which it pauses."""

    primary: str  # source | target
    replica: str
    selection: tuple[str, ...] | None
    max_lag_s: float


class VerifyStep(Step):
    def __init__(self, m: Migration, job: Job):
        self.m = m
        self.job = job

    def session(self, name: str) -> Session:
        return getattr(self.m, name)(read_timeout=STATEMENT_LIMIT_S + 30)


class TakeInventory(VerifyStep):
    name = "inventory"
    changes_nothing = True
    timeout_s = 300.0

    def describe(self) -> str:
        return (f"read, changing nothing: {self.job.replica} replicates from {self.job.primary}, healthy; the carried "
                "tables on both, their columns and the key each is compared along")

    def done(self, ctx: RunContext) -> bool:
        return "tables" in ctx.facts  # taken earlier in this attempt: the chunks journaled refer to it

    def run(self, ctx: RunContext) -> str:
        job = self.job
        with self.session(job.primary) as p, self.session(job.replica) as r:
            self._follows(r)
            schemas = inventory.carried_schemas(p, self.m.pb.seed.databases)
            inv = inventory.take(p, r, schemas, list(job.selection) if job.selection else None)
            unknown = sorted(set(job.selection or ()) - {t.full_name for t in inv.tables}
                             - {d["table"] for d in inv.differences})
            if unknown:
                raise Refused(f"--tables names table(s) that are not carried base tables on the {job.primary}: "
                              f"{', '.join(unknown)}", hint=f"name them as schema.table, among the schemas "
                                                            f"{', '.join(schemas)}")
            if p.dialect.flavor != r.dialect.flavor or p.dialect.version[:2] != r.dialect.version[:2]:
                inv.warnings.append(f"{p.dialect.name} against {r.dialect.name}: values are compared as each server "
                                    "prints them, which may differ between versions: check a named row by hand")
        ctx.facts.update(tables=[t.as_dict() for t in inv.tables], definition_differences=inv.differences,
                         warnings=inv.warnings, primary=job.primary, replica=job.replica,
                         selection=list(job.selection or []), attempt_started_at=now_iso())
        ctx.save()
        whole = sum(1 for t in inv.tables if not t.key)
        return (f"{len(inv.tables)} table(s) of {', '.join(schemas) or 'no schema'} to compare"
                + (f" ({whole} without a usable key, compared whole)" if whole else "")
                + (f"; {len(inv.differences)} table(s) differ by definition or existence" if inv.differences else ""))

    def _follows(self, r: Session) -> None:
        status = replication.read_status(r)
        link = self.m.forward_link if self.job.primary == "source" else self.m.reverse_link
        if not status.configured:
            raise Refused(f"the {self.job.replica} does not replicate: verify compares a replica with its primary",
                          hint="`migrate status` says where the migration stands")
        if not status.healthy:
            raise Refused(f"replication on the {self.job.replica} is not healthy: IO {status.io_state}, SQL "
                          f"{'running' if status.sql_running else 'stopped'}; {status.last_error or ''}",
                          hint=replication.hint_for(status))
        if (status.source_host, status.source_port) != (link.host, link.port):
            raise Refused(f"the {self.job.replica} replicates from {status.source_host}:{status.source_port}, not from "
                          f"the {self.job.primary} ({link.host}:{link.port})",
                          hint="check the playbook and the replica's configuration")


class CompareChunks(VerifyStep):
    name = "compare_chunks"
    changes_nothing = True
    timeout_s = 7 * 24 * 3600.0

    def describe(self) -> str:
        return ("compare every table chunk by chunk along its key, each chunk at a consistent point (the primary's "
                "snapshot, the replica once it applied it), re-checking a chunk that differs and confirming its "
                "rows with them briefly locked on the primary; journal each chunk; pause while the replica lags")

    def done(self, ctx: RunContext) -> bool:
        finished = {r["table"] for r in ctx.recorded(CHUNK_EVENT) if r["through"] is None}
        return "tables" in ctx.facts and all(_name(t) in finished for t in ctx.facts["tables"])

    def run(self, ctx: RunContext) -> str:
        tables = [Table.from_dict(t) for t in ctx.facts["tables"]]
        records = ctx.recorded(CHUNK_EVENT)
        last: dict[str, dict] = {}
        for r in records:
            last[r["table"]] = r
        done_rows = sum(r["rows"] for r in records)
        total = max(done_rows, sum(t.est_rows for t in tables))
        p, r, ahead = self.session(self.job.primary), self.session(self.job.replica), self.session(self.job.primary)
        for s in (p, r, ahead):
            ctx.on_cancel(s.close)
        throttle = Throttle(p, r, max_lag_s=self.job.max_lag_s, cancelled=ctx.cancelled,
                            say=lambda text: ctx.progress(text, every_s=5))
        comparer = Comparer(p, r, throttle, ahead=ahead)
        chunks = differing = 0
        learned = 1000  # a table starts at the size the one before it learned (at most CARRIED_ROWS)
        checkpoint_at = 0.0
        try:
            for s in (p, r, ahead):
                Comparer.prepare(s)
            for table in tables:
                previous = last.get(table.full_name)
                if previous is not None and previous["through"] is None:
                    continue  # compared to its end earlier in this attempt
                after = decode_key(previous["through"]) if previous else None
                sizer = Sizer(start=previous.get("next_rows", 1000) if previous else min(learned, CARRIED_ROWS))
                t0 = time.monotonic()
                for result in comparer.chunks(table, after, sizer):
                    self._record(ctx, result, time.monotonic() - t0, sizer.rows)
                    t0 = time.monotonic()
                    chunks += 1
                    differing += not result.equal
                    done_rows += result.rows
                    ctx.progress("comparing rows", done=done_rows, total=max(total, done_rows), unit="rows",
                                 every_s=5)
                    if time.monotonic() - checkpoint_at > CHECKPOINT_EVERY_S:
                        checkpoint_at = time.monotonic()
                        ctx.checkpoint(f"{table.full_name}: compared through {shown_key(result.through)}; "
                                       f"{done_rows:,} rows so far")
                learned = max(learned, sizer.rows)
        finally:
            comparer.close()
            for s in (p, r, ahead):
                s.close()
        said = f"{chunks} chunk(s) compared in this run"
        if records:
            said += f", after {len(records)} chunk(s) journaled by an earlier run of this attempt"
        return said + (f"; {differing} chunk(s) differ" if differing else "; no chunk differs")

    @staticmethod
    def _record(ctx: RunContext, res: ChunkResult, wall_s: float, next_rows: int) -> None:
        ctx.record(CHUNK_EVENT, table=res.table, after=encode_key(res.after), through=encode_key(res.through),
                   rows=res.rows, seconds=round(res.seconds, 4), wall_s=round(wall_s, 4),
                   waited_s=round(res.waited_s, 4), reads=res.reads, equal=res.equal, how=res.how,
                   differing_rows=res.differing_rows,
                   differences=[{"key": encode_key(d.key), "kind": d.kind} for d in res.differences],
                   unverified=len(res.unverified), first_key=encode_key(res.first_key),
                   last_key=encode_key(res.last_key), next_rows=next_rows)


def _name(t: dict) -> str:
    return f"{t['schema']}.{t['name']}"


def steps(m: Migration, job: Job) -> list[Step]:
    return [TakeInventory(m, job), CompareChunks(m, job)]
