"""Read-only facts about the target's host, gathered through its executor: free disk, seeding tools,
whether it can reach the source, and its clock."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field

from migrate.adapters.executor import Executor
from migrate.errors import MigrateError

TOOLS = ("mydumper", "myloader", "mysqldump", "mariadb-dump", "mysql", "mariadb", "xtrabackup", "mariadb-backup")


@dataclass
class HostFacts:
    reachable: bool
    error: str | None = None
    free_bytes: int | None = None
    disk_path: str | None = None
    tools: dict[str, str | None] = field(default_factory=dict)
    source_tcp: str | None = None  # None: connected; otherwise why not
    clock_offset_s: float | None = None  # host clock minus this machine's


def inspect(host: Executor, *, datadir: str, source_host: str, source_port: int) -> HostFacts:
    try:
        host.run(["true"], timeout=15)
    except MigrateError as exc:
        return HostFacts(reachable=False, error=str(exc))
    facts = HostFacts(reachable=True)
    # df on the datadir, or on its nearest existing parent (a fresh host may not have it yet)
    probe = ("p=" + shlex.quote(datadir) + '; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; '
             'df -PB1 "$p" | tail -1; echo "$p"')
    out = host.run(probe, timeout=30, check=False).text.split("\n")
    if out and len(out[0].split()) >= 4:
        facts.free_bytes, facts.disk_path = int(out[0].split()[3]), out[1].strip() if len(out) > 1 else datadir
    listing = host.run("for t in " + " ".join(TOOLS) + '; do printf "%s %s\\n" "$t" "$(command -v $t)"; done',
                       timeout=30).text
    facts.tools = {parts[0]: (parts[1] if len(parts) > 1 else None)
                   for parts in (line.split() for line in listing.splitlines()) if parts}
    check = host.run(f"timeout 5 bash -c {shlex.quote(f'exec 3<>/dev/tcp/{source_host}/{int(source_port)}')}",
                     timeout=15, check=False)
    facts.source_tcp = None if check.ok else (check.stderr.strip().splitlines() or ["timed out"])[-1]
    before = time.time()
    remote = float(host.run(["date", "+%s.%N"], timeout=15).text.strip())
    after = time.time()
    facts.clock_offset_s = remote - (before + after) / 2
    return facts
