"""The physical seed, for a self-managed source reachable by SSH (never RDS: no datadir to copy):
mariadb-backup (MariaDB) or xtrabackup (MySQL) streamed from the source host straight to the target host
(the target host pulls it over SSH: the data never passes through the machine that runs `migrate`),
prepared there, moved into the target's datadir with the datadir's owner, the server restarted, and the
coordinates the backup recorded returned for replication.

The clone carries the source's `mysql` schema: afterwards the target has the source's accounts, so
`target.user` must exist on the source with the same password.
"""

from __future__ import annotations

import re
import shlex
import time
import uuid
from dataclasses import dataclass

from migrate.adapters.client_config import defaults_file
from migrate.adapters.db import Endpoint
from migrate.adapters.dialect import BinlogPosition, Dialect
from migrate.adapters.executor import Executor
from migrate.capabilities.seed.common import Every, Progress, SeedError, SeedResult, stop_leftovers
from migrate.playbook import Service, Ssh


@dataclass(frozen=True)
class PhysicalPlan:
    source: Endpoint  # as the source host reaches its own server
    source_ssh: Ssh  # how the target host reaches the source host (key and known_hosts paths on the target host)
    source_datadir: str
    dialect: Dialect
    target_datadir: str
    service: Service
    workdir: str  # on the target host
    data_bytes: int = 0
    threads: int = 4
    # The copied server is itself a replica (a rehearsal cloned from the target): return the coordinates in
    # *its source's* binary log that the backup recorded of it (`--slave-info`), not its own binary log's.
    of_replica: bool = False
    keep_previous: bool = True  # keep the replaced datadir aside (a rehearsal's is thrown away)


# MariaDB 10.x's mariadb-backup still writes xtrabackup_binlog_info; 11.x renamed it (and the slave info).
BINLOG_INFO_FILES = ("xtrabackup_binlog_info", "mariadb_backup_binlog_info")
SLAVE_INFO_FILES = ("xtrabackup_slave_info", "mariadb_backup_slave_info")


def tools(dialect: Dialect) -> tuple[str, str]:
    """(backup tool, stream extractor) for the flavor."""
    return ("mariadb-backup", "mbstream") if dialect.is_mariadb else ("xtrabackup", "xbstream")


def seed(source_host: Executor, target_host: Executor, plan: PhysicalPlan, progress: Progress,
         timeout_s: float) -> SeedResult:
    backup, extract = tools(plan.dialect)
    for host, program in ((source_host, backup), (target_host, backup), (target_host, extract)):
        if not host.which(program):
            raise SeedError(f"{program} is not installed on the {host.label}",
                            hint=f"install {program} on both hosts (the physical seed needs it there)")
    started = time.monotonic()
    stop_leftovers(target_host, plan.workdir)
    target_host.run(["rm", "-rf", plan.workdir], timeout=600)
    target_host.run(["mkdir", "-p", "-m", "700", plan.workdir], timeout=60)
    cnf = f"/tmp/.migrate-backup-{uuid.uuid4().hex}.cnf"  # on the source host, 0600, removed after
    source_host.write_file(cnf, defaults_file(plan.source, mysql_tools=not plan.dialect.is_mariadb))
    try:
        _stream(target_host, plan, backup, extract, cnf, progress, timeout_s)
    finally:
        source_host.run(["rm", "-f", cnf], timeout=60, check=False)
    size = int(target_host.run(["du", "-sb", plan.workdir], timeout=300).text.split()[0])
    target_host.run([backup, "--prepare", f"--target-dir={plan.workdir}"], timeout=timeout_s)
    files = SLAVE_INFO_FILES if plan.of_replica else BINLOG_INFO_FILES
    names = " ".join(shlex.quote(f"{plan.workdir}/{n}") for n in files)
    recorded = target_host.run(f"cat {names} 2>/dev/null || true", timeout=60).text
    position = parse_slave_info(recorded) if plan.of_replica else parse_binlog_info(recorded)
    old = _swap_datadir(target_host, plan, backup, timeout_s)
    target_host.run(["rm", "-rf", plan.workdir], timeout=600, check=False)
    if not plan.keep_previous:
        target_host.run(["rm", "-rf", old], timeout=600, check=False)
    kept = f"the previous datadir is kept at {old}" if plan.keep_previous else "the previous datadir was removed"
    return SeedResult(backup, position, time.monotonic() - started, size,
                      f"{backup} streamed {source_host.label} -> {target_host.label}; {kept}")


def _stream(target_host: Executor, plan: PhysicalPlan, backup: str, extract: str, cnf: str, progress: Progress,
            timeout_s: float) -> None:
    ssh = plan.source_ssh
    remote = shlex.join([backup, f"--defaults-file={cnf}", "--backup", "--stream=xbstream",
                         f"--datadir={plan.source_datadir}", f"--parallel={plan.threads}", "--target-dir=/tmp",
                         *(["--slave-info"] if plan.of_replica else [])])
    if ssh.sudo:
        remote = "sudo -n " + remote
    pull = ["ssh", "-i", str(ssh.key_file), "-p", str(ssh.port), "-o", f"UserKnownHostsFile={ssh.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", f"{ssh.user}@{ssh.host}", remote]

    def poll() -> None:
        done = int(target_host.run(["du", "-sb", plan.workdir], timeout=30, check=False).text.split()[0] or 0)
        progress("seed: physical copy (bytes received, total estimated)", done, max(plan.data_bytes, done), "B")

    with Every(poll):
        target_host.pipeline([pull, [extract, "-x", "-C", plan.workdir]], timeout=timeout_s)


def _swap_datadir(host: Executor, plan: PhysicalPlan, backup: str, timeout_s: float) -> str:
    """Stop the server, keep its datadir aside, move the prepared copy in with the same owner, start it."""
    datadir = plan.target_datadir.rstrip("/")
    owner = host.run(["stat", "-c", "%U:%G", datadir], timeout=30).text.strip()
    old = f"{datadir}.migrate-old-{time.strftime('%Y%m%d-%H%M%S')}"
    host.run(plan.service.stop, timeout=300)
    host.run(["mv", datadir, old], timeout=300)
    host.run(["mkdir", "-m", "750", datadir], timeout=60)
    host.run([backup, "--move-back", f"--target-dir={plan.workdir}", f"--datadir={datadir}"], timeout=timeout_s)
    host.run(["chown", "-R", owner, datadir], timeout=600)
    if plan.dialect.is_mariadb:
        roll_back_prepared(host, datadir, plan.workdir, owner.split(":")[0])
    host.run(plan.service.start, timeout=600)
    return old


RECOVERY_WAIT_S = 300


def roll_back_prepared(host: Executor, datadir: str, workdir: str, user: str) -> str:
    """MariaDB: start the copy once, alone (no network, no binary log), with --tc-heuristic-recover=rollback,
    then shut it down. A copy taken while transactions were between InnoDB's prepare and their commit (group
    commit, parallel replication: measured under 500 writes/s) holds them prepared, and the copy has no binary
    log to decide them: the server then refuses to start ("Found N prepared transactions!", MDEV-36025). None
    of them is in the coordinates the copy records, so rolling them back is what keeps the copy consistent
    with them. `workdir` holds the backup's backup-my.cnf (its InnoDB settings)."""
    server = host.which("mariadbd") or host.which("mysqld")
    if not server:
        raise SeedError(f"no mariadbd on the {host.label} to start the copy once for recovery",
                        hint="install the MariaDB server there (the service the copy is for)")
    # The pass's own files go in the datadir, which the server's user owns by now; removed afterwards.
    log, pid, sock = (f"{datadir}/migrate-recover.{ext}" for ext in ("err", "pid", "sock"))
    start = shlex.join([server, f"--defaults-file={workdir}/backup-my.cnf", f"--datadir={datadir}",
                        "--tc-heuristic-recover=rollback", "--skip-networking", f"--socket={sock}",
                        f"--pid-file={pid}", f"--log-error={log}", f"--user={user}", f"--tmpdir={datadir}"])
    script = (f"{start} & p=$!; i=0; while [ $i -lt {RECOVERY_WAIT_S * 5} ]; do "
              f"grep -q 'ready for connections' {shlex.quote(log)} 2>/dev/null && break; "
              "kill -0 $p 2>/dev/null || break; sleep 0.2; i=$((i+1)); done; kill -TERM $p 2>/dev/null; wait $p; "
              f"grep -q 'ready for connections' {shlex.quote(log)}")
    result = host.run(script, timeout=RECOVERY_WAIT_S + 120, check=False)
    said = host.run(["cat", log], timeout=30, check=False).text
    host.run(["rm", "-f", log, pid, sock], timeout=30, check=False)
    if not result.ok:
        raise SeedError("the copy did not start for its recovery pass: "
                        + " / ".join(line.strip() for line in said.splitlines() if "[ERROR]" in line)[-500:],
                        hint=f"read {log} on the {host.label}")
    found = re.search(r"Found (\d+) prepared transaction", said)
    return f"{found.group(1)} prepared transaction(s) rolled back" if found else "no prepared transaction"


def parse_binlog_info(text: str) -> BinlogPosition:
    """`mariadb_backup_binlog_info` / `xtrabackup_binlog_info`: file, position and (when on) GTID."""
    parts = text.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise SeedError(f"the backup recorded no binary log position ({text.strip()[:100]!r}): is binary logging on "
                        "at the source?", hint="turn binary logging on at the source and seed again")
    return BinlogPosition(parts[0], int(parts[1]), " ".join(parts[2:]) or None)


def parse_slave_info(text: str) -> BinlogPosition:
    """`mariadb_backup_slave_info` / `xtrabackup_slave_info`: where the copied replica had applied its source's
    binary log, as `CHANGE MASTER TO MASTER_LOG_FILE='f', MASTER_LOG_POS=n` and, with GTIDs,
    `SET GLOBAL gtid_slave_pos = '...'` (MariaDB) or `SET GLOBAL gtid_purged='...'` (MySQL)."""
    file = re.search(r"MASTER_LOG_FILE\s*=\s*'([^']+)'", text, re.I)
    pos = re.search(r"MASTER_LOG_POS\s*=\s*(\d+)", text, re.I)
    gtid = re.search(r"(?:gtid_slave_pos|gtid_purged)\s*=\s*'([^']*)'", text, re.I)
    if not gtid and not (file and pos):
        raise SeedError(f"the backup recorded no replication coordinates of the copied replica "
                        f"({text.strip()[:160]!r}): was it replicating when the backup ran?",
                        hint="check that the target replicates (migrate status), then rehearse again")
    return BinlogPosition(file.group(1) if file else "", int(pos.group(1)) if pos else 0,
                          (gtid.group(1) or None) if gtid else None)
