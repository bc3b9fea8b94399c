"""runbook.md, run as written: every command of its `sh runbook` blocks, in order, through the real `migrate`
command on a sandbox of the test's own, `PLAYBOOK` replaced by the sandbox's playbook.

Each command must exit 0, or the code its line names in a trailing `# exits N`. The runbook has no command
that waits for the replica to catch up (`migrate status --watch` never ends, and the runbook's blocks take one
snapshot instead), so before a `rehearse` or a `cutover` that the migration's phase lets run the test waits
until the target has caught up (`migrate.workflows.demo.wait_caught_up`), as the DBA waits watching status.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from migrate.capabilities import phase
from migrate.capabilities.migration import Migration
from migrate.playbook import load
from migrate.sandbox import sandbox as sandbox_mod
from migrate.workflows.demo import wait_caught_up
from tests.helpers import ROOT, run_migrate

RUNBOOK = ROOT / "runbook.md"
BLOCK = re.compile(r"^```sh runbook[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
EXITS = re.compile(r"#\s*exits\s+(\d+)\s*$")
CATCH_UP_S = 60
COMMAND_TIMEOUT_S = 240
# What the runbook must keep: without these it is not the procedure any more.
REQUIRED = {
    "plan": ("plan",), "start": ("start",), "status": ("status",), "rehearse": ("rehearse",),
    "cutover --dry-run": ("cutover", "--dry-run"), "cutover --yes": ("cutover", "--yes"),
    "report": ("report",), "rollback --yes": ("rollback", "--yes"),
}


@dataclass(frozen=True)
class Command:
    line: str
    args: tuple[str, ...]  # after `migrate`, PLAYBOOK still a placeholder
    exits: int

    @property
    def subcommand(self) -> str:
        return self.args[0] if self.args else ""

    def has(self, *words: str) -> bool:
        return self.subcommand == words[0] and all(w in self.args for w in words[1:])

    def argv(self, playbook: Path) -> list[str]:
        return [str(playbook) if a == "PLAYBOOK" else a for a in self.args]


def commands(text: str) -> list[Command]:
    """The commands of the `sh runbook` blocks of `text`, in order; blank lines and whole-line comments skipped."""
    found = []
    for block in BLOCK.findall(text):
        for line in block.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            words = shlex.split(line, comments=True)
            assert words[0] == "migrate", f"a runbook command starts with `migrate`: {line!r}"
            expected = EXITS.search(line)
            found.append(Command(line, tuple(words[1:]), int(expected.group(1)) if expected else 0))
    return found


def test_the_runbook_blocks_are_read_as_commands_with_their_exit_codes():
    text = "\n".join([
        "```sh runbook", "migrate plan -p PLAYBOOK", "", "# a comment", "migrate start -p PLAYBOOK  # exits 1", "```",
        "```sh", "migrate not-this -p PLAYBOOK", "```",
        "```sh runbook", "migrate cutover -p PLAYBOOK --yes", "```"])
    got = commands(text)
    assert [(c.args, c.exits) for c in got] == [
        (("plan", "-p", "PLAYBOOK"), 0), (("start", "-p", "PLAYBOOK"), 1), (("cutover", "-p", "PLAYBOOK", "--yes"), 0)]
    assert got[2].argv(Path("/x/pb.yml")) == ["cutover", "-p", "/x/pb.yml", "--yes"]


def test_the_runbook_keeps_the_whole_procedure():
    runbook = commands(RUNBOOK.read_text())
    missing = [name for name, words in REQUIRED.items() if not any(c.has(*words) for c in runbook)]
    assert not missing, f"runbook.md has no `sh runbook` command for: {', '.join(missing)}"
    assert all("--watch" not in c.args for c in runbook), "`status --watch` never ends: not in a `sh runbook` block"
    assert all("PLAYBOOK" in c.args for c in runbook), "every runbook command names the playbook as PLAYBOOK"


def test_the_runbook_runs_as_written_on_a_sandbox():
    runbook = commands(RUNBOOK.read_text())
    with sandbox_mod.temporary(rows=2000, prefix="mig-rb-") as sb:
        playbook = sb.playbook_path
        for i, command in enumerate(runbook, 1):
            if _waits_for_the_replica(command, playbook):
                wait_caught_up(Migration(load(playbook)), CATCH_UP_S)
            started = time.monotonic()
            result = run_migrate(*command.argv(playbook), timeout=COMMAND_TIMEOUT_S)
            took = time.monotonic() - started
            print(f"{i:2}. {command.line}  -> exit {result.returncode} in {took:.1f} s", file=sys.stderr)
            assert result.returncode == command.exits, (
                f"runbook command {i}, `{command.line}`, exited {result.returncode} (expected {command.exits}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


def _waits_for_the_replica(command: Command, playbook: Path) -> bool:
    """A rehearse or cutover that will run: wait, as the DBA does, until the target has caught up."""
    if "--dry-run" in command.args or command.subcommand not in ("rehearse", "cutover"):
        return False
    m = Migration(load(playbook))
    return phase.read(m.store.load_state()).phase in ("replicating", "rolled_back")

