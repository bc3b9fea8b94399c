"""The logical seed: dump the source and load the target, both run on the target host, so the data
flows source -> target host and never through the machine that runs `migrate`.

One consistent snapshot with its exact binary-log coordinates:
- mydumper: FLUSH TABLES WITH READ LOCK where allowed, else `--lock-all-tables` (LOCK TABLES ... READ on
  every dumped table while the dump threads open their snapshots: RDS refuses the global lock);
  coordinates from its `metadata` file.
- mysqldump / mariadb-dump: `--single-transaction` with the coordinates in the dump's header (MariaDB
  reads them from the snapshot itself, Binlog_snapshot_*, with no lock at all).
The load runs with binary logging off, so the seed never reaches the target's own binlog.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from migrate.adapters.client_config import defaults_file
from migrate.adapters.db import Endpoint
from migrate.adapters.dialect import BinlogPosition, Dialect
from migrate.adapters.executor import Executor
from migrate.capabilities.seed.common import Every, Progress, SeedError, SeedResult, stop_leftovers
from migrate.errors import MigrateError

CHUNK_ROWS = 100_000  # mydumper splits bigger tables into files of this many rows: myloader loads them in parallel


class SeedStalled(SeedError):
    """The dump stopped making progress and was stopped; safe to start over."""


@dataclass(frozen=True)
class SeedPlan:
    source: Endpoint  # as the target host reaches it
    target: Endpoint  # as the target host reaches it
    source_dialect: Dialect
    schemas: list[str]
    tables: int  # for progress
    threads: int
    tool: str  # auto | mydumper | mysqldump
    global_lock: bool  # FLUSH TABLES WITH READ LOCK allowed on the source
    workdir: str
    non_transactional: tuple[str, ...] = ()  # MyISAM & co: outside any transaction's snapshot
    data_bytes: int = 0  # the source's estimate, for the dump's progress
    rows: int = 0  # the source's estimate, for the load's progress
    rows_loaded: Callable[[], int] | None = None  # rows the target has inserted so far (a status counter)
    # Known coordinates of a quiescent source (a read replica whose replication is stopped): dump without
    # locks and without reading coordinates, the snapshot cannot move.
    position: BinlogPosition | None = None
    diagnose: Callable[[], str] | None = None  # what the source is doing, when the dump stalls
    # Kills the dump's sessions still waiting on the source: a pending lock request queues the application's
    # writes behind it, and the server may not notice the dead client while it waits.
    release: Callable[[], object] | None = None
    stall_s: float = 60.0  # a dump that writes nothing for this long is stopped (see _DumpWatch)
    table_names: tuple[tuple[str, str], ...] = ()  # (schema, table): what mydumper must be able to carry


def mydumper_cannot(schemas: list[str], tables: list[tuple[str, str]]) -> list[str]:
    """The names mydumper 0.10 cannot carry, each with why (measured on Debian's 0.10.0): a backtick in a schema
    or table name ends in an SQL syntax error, a non-ASCII schema name in exit 1 without a word, and a dot
    in a schema name in a dump that myloader loads as nothing, exiting 0."""
    out = []
    for schema in schemas:
        if "`" in schema:
            out.append(f"schema {schema!r} (a backtick)")
        elif not schema.isascii():
            out.append(f"schema {schema!r} (not ASCII)")
        elif "." in schema:
            out.append(f"schema {schema!r} (a dot: myloader would load none of its tables)")
    out += [f"table {s!r}.{t!r} (a backtick)" for s, t in tables if "`" in t and "`" not in s]
    return out


def pick_tool(wanted: str, has_mydumper: bool, cannot: list[str]) -> str:
    """mydumper when the host has it and it can carry every name (`cannot`: mydumper_cannot's list), else
    mysqldump; an explicit seed.tool: mydumper that cannot is refused, naming the objects."""
    if wanted == "mydumper" and cannot:
        raise SeedError(f"mydumper cannot carry {', '.join(cannot)}",
                        hint="set seed.tool: mysqldump (or auto), or rename those objects")
    if wanted != "auto":
        return wanted
    return "mydumper" if has_mydumper and not cannot else "mysqldump"


def choose_tool(host: Executor, wanted: str, cannot: list[str]) -> str:
    return pick_tool(wanted, bool(host.which("mydumper") and host.which("myloader")), cannot)


def seed(host: Executor, plan: SeedPlan, progress: Progress, timeout_s: float) -> SeedResult:
    tool = choose_tool(host, plan.tool, mydumper_cannot(plan.schemas, list(plan.table_names)))
    if tool == "mysqldump" and plan.non_transactional and not plan.global_lock and plan.position is None:
        raise SeedError(
            f"{len(plan.non_transactional)} non-transactional table(s) ({', '.join(plan.non_transactional[:5])}) "
            "are outside --single-transaction's snapshot, and this source refuses the global read lock that "
            "would hold them still: a write during the dump would land in the dump and again by replication",
            hint="install mydumper on the target host (it locks every table while its snapshot starts), or "
                 "convert those tables to InnoDB")
    started = time.monotonic()
    stop_leftovers(host, plan.workdir)
    host.run(["rm", "-rf", plan.workdir], timeout=600)
    host.run(["mkdir", "-p", "-m", "700", plan.workdir], timeout=60)
    src_cnf, tgt_cnf = f"{plan.workdir}/source.cnf", f"{plan.workdir}/target.cnf"
    mysql_tools = plan.source_dialect.flavor == "mysql"
    host.write_file(src_cnf, defaults_file(plan.source, mysql_tools=mysql_tools))
    host.write_file(tgt_cnf, defaults_file(plan.target, mysql_tools=mysql_tools))
    try:
        if tool == "mydumper":
            position, consistency, size = _mydumper(host, plan, src_cnf, tgt_cnf, progress, timeout_s)
        else:
            position, consistency, size = _mysqldump(host, plan, src_cnf, tgt_cnf, progress, timeout_s)
    finally:
        host.run(["rm", "-f", src_cnf, tgt_cnf], timeout=60, check=False)
    host.run(["rm", "-rf", plan.workdir], timeout=600, check=False)
    return SeedResult(tool, position, time.monotonic() - started, size, consistency)


class _DumpWatch(Every):
    """Reports the dump's progress and stops a dump that has written nothing for STALL_S seconds: a dump
    waiting on a lock (behind a long transaction, or a deadlock in the tool) also holds the application's
    writes back, so it must not wait unbounded (plan.stall_s). `stalled` then says what the source was doing."""

    def __init__(self, host: Executor, plan: SeedPlan, path: str, progress: Progress):
        super().__init__(self._poll)
        self.host, self.plan, self.path, self.progress = host, plan, path, progress
        self.size, self.changed = -1, time.monotonic()
        self.stalled: str | None = None

    def _poll(self) -> None:
        size = int(self.host.run(["du", "-sb", self.path], timeout=30, check=False).text.split()[0] or 0)
        if size != self.size:
            self.size, self.changed = size, time.monotonic()
        elif self.stalled is None and time.monotonic() - self.changed > self.plan.stall_s:
            self.stalled = self.plan.diagnose() if self.plan.diagnose else "no diagnosis available"
            stop_leftovers(self.host, self.plan.workdir)
            if self.plan.release:
                self.plan.release()
        self.progress("seed: dump (bytes written, total estimated)", size, max(self.plan.data_bytes, size), "B")

    def check(self, exc: Exception) -> None:
        """Turn the failure of a dump this watch stopped into the reason."""
        if self.stalled is not None:
            raise SeedStalled(f"the dump wrote nothing for {self.plan.stall_s:g} s and was stopped; on the source: "
                              f"{self.stalled}", hint="a long transaction or a lock held the dump back: let it "
                              "finish and rerun `migrate start`, or use seed.consistency: replica") from exc
        raise exc


def _load_progress(plan: SeedPlan, progress: Progress) -> Every:
    start = plan.rows_loaded() if plan.rows_loaded else 0

    def poll() -> None:
        if plan.rows_loaded:
            done = plan.rows_loaded() - start
            progress("seed: load (rows inserted, total estimated)", done, max(plan.rows, done), "rows")
    return Every(poll)


# -- mydumper / myloader ----------------------------------------------------------------------------


def mydumper_command(plan: SeedPlan, src_cnf: str, out_dir: str) -> list[str]:
    regex = "^(" + "|".join(re.escape(s) + r"\." for s in plan.schemas) + ")"
    argv = ["mydumper", f"--defaults-file={src_cnf}", "--outputdir", out_dir, "--threads", str(plan.threads),
            "--triggers", "--events", "--routines", "--regex", regex, "--rows", str(CHUNK_ROWS), "--verbose", "2"]
    if plan.position is not None:
        argv.append("--no-locks")  # nothing writes to a stopped replica
    elif not plan.global_lock:
        argv.append("--lock-all-tables")
    return argv


def myloader_command(plan: SeedPlan, tgt_cnf: str, out_dir: str) -> list[str]:
    # myloader disables binary logging for its sessions unless --enable-binlog is given.
    return ["myloader", f"--defaults-file={tgt_cnf}", "--directory", out_dir, "--threads", str(plan.threads),
            "--overwrite-tables", "--verbose", "2"]


def _mydumper(host: Executor, plan: SeedPlan, src_cnf: str, tgt_cnf: str, progress: Progress,
              timeout_s: float) -> tuple[BinlogPosition, str, int]:
    out_dir = f"{plan.workdir}/dump"
    deadline = time.monotonic() + timeout_s
    with _DumpWatch(host, plan, out_dir, progress) as watch:
        try:
            host.run(mydumper_command(plan, src_cnf, out_dir), timeout=timeout_s)
        except MigrateError as exc:
            watch.check(exc)
    position = plan.position or parse_mydumper_metadata(host.read_file(f"{out_dir}/metadata").decode())
    size = int(host.run(["du", "-sb", out_dir], timeout=120).text.split()[0])
    with _load_progress(plan, progress):
        host.run(myloader_command(plan, tgt_cnf, out_dir), timeout=max(60.0, deadline - time.monotonic()))
    consistency = ("a read replica stopped at a known position, no lock" if plan.position else
                   "global read lock" if plan.global_lock else "LOCK TABLES on every dumped table")
    return position, f"mydumper, {consistency}", size


def parse_mydumper_metadata(text: str) -> BinlogPosition:
    """The `SHOW MASTER STATUS:` block of mydumper's metadata file (Log, Pos and, when on, GTID)."""
    block = text.split("SHOW MASTER STATUS:", 1)
    if len(block) != 2:
        raise SeedError("mydumper's metadata has no binary log position: binary logging may be off on the source",
                        hint="turn binary logging on (RDS: automated backups on) and seed again")
    body = block[1].split("SHOW SLAVE STATUS:")[0]
    fields = dict(re.findall(r"^\s*(Log|Pos|GTID)\s*:\s*(.*?)\s*$", body, re.M))
    if "Log" not in fields or "Pos" not in fields:
        raise SeedError(f"cannot read the binary log position from mydumper's metadata: {body.strip()[:200]}")
    return BinlogPosition(fields["Log"], int(fields["Pos"]), fields.get("GTID") or None)


# -- mysqldump / mariadb-dump -----------------------------------------------------------------------


def mysqldump_commands(plan: SeedPlan, src_cnf: str, tgt_cnf: str, dump_file: str) -> tuple[str, str]:
    d = plan.source_dialect
    known = plan.position is not None  # a stopped replica: its coordinates are known, nothing moves
    if d.is_mariadb:
        dump = ["mariadb-dump", f"--defaults-file={src_cnf}", *([] if known else ["--master-data=2", "--gtid"])]
        load = ["mariadb", f"--defaults-file={tgt_cnf}"]
    else:
        coords = "--source-data=2" if d.version >= (8, 0, 26) else "--master-data=2"
        dump = ["mysqldump", f"--defaults-file={src_cnf}", *([] if known else [coords]), "--set-gtid-purged=OFF"
                if known else "--set-gtid-purged=COMMENTED"]
        load = ["mysql", f"--defaults-file={tgt_cnf}"]
    # Non-transactional tables need the global lock for the whole dump; InnoDB alone, a snapshot.
    lock_all = plan.non_transactional and not known
    dump += ["--lock-all-tables" if lock_all else "--single-transaction", "--routines", "--events",
             "--triggers", "--hex-blob",
             "--default-character-set=utf8mb4", "--databases", *plan.schemas]
    load += ["--init-command=SET SESSION sql_log_bin=0", "--default-character-set=utf8mb4"]
    return shlex.join(dump) + " > " + shlex.quote(dump_file), shlex.join(load) + " < " + shlex.quote(dump_file)


def _mysqldump(host: Executor, plan: SeedPlan, src_cnf: str, tgt_cnf: str, progress: Progress,
               timeout_s: float) -> tuple[BinlogPosition, str, int]:
    dump_file = f"{plan.workdir}/dump.sql"
    dump, load = mysqldump_commands(plan, src_cnf, tgt_cnf, dump_file)
    deadline = time.monotonic() + timeout_s
    with _DumpWatch(host, plan, dump_file, progress) as watch:
        try:
            host.run(dump, timeout=timeout_s)
        except MigrateError as exc:
            watch.check(exc)
    position = plan.position or parse_dump_header(host.run(f"head -n 300 {shlex.quote(dump_file)}", timeout=60).text)
    size = int(host.run(["stat", "-c", "%s", dump_file], timeout=60).text.strip())
    with _load_progress(plan, progress):
        host.run(load, timeout=max(60.0, deadline - time.monotonic()))
    how = ("mysqldump of a read replica stopped at a known position" if plan.position else
           "mysqldump --lock-all-tables (non-transactional tables: writes wait for the whole dump)"
           if plan.non_transactional else "mysqldump --single-transaction (coordinates of the snapshot itself)")
    return position, how, size


def parse_dump_header(header: str) -> BinlogPosition:
    m = re.search(r"CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)', "
                  r"(?:MASTER|SOURCE)_LOG_POS=(\d+)", header)
    if not m:
        raise SeedError("the dump carries no binary log position (was binary logging on at the source?)",
                        hint="turn binary logging on at the source and seed again")
    gtid = re.search(r"SET GLOBAL gtid_slave_pos='([^']*)'", header) or \
        re.search(r"GTID_PURGED=(?:/\*!80000 '\+'\*/ )?'([^']*)'", header)
    return BinlogPosition(m.group(1), int(m.group(2)), (gtid.group(1) or None) if gtid else None)
