"""No password of a run in any binary or relay log it produced, in any file it wrote, in its output, or on any
process's command line or environment while it ran: plan, start, cutover and rollback on a sandbox of the
test's own, every process on the machine watched while they run."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from migrate.sandbox import procs
from migrate.sandbox import sandbox as sandbox_mod
from tests.switching import fast_playbook, migrate

SCAN_EVERY_S = 0.01


class ProcessWatch:
    """Reads every process's command line and environment, over and over, from a thread; remembers each
    process in which a secret appeared, and every command line seen (to show the watch saw the tools)."""

    def __init__(self, secrets: dict[str, str]):
        self.secrets = {name: value.encode() for name, value in secrets.items()}
        self.hits: set[tuple[str, str, str]] = set()  # (secret's name, where, the process's program)
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ProcessWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == me:
                    continue
                for where in ("cmdline", "environ"):
                    try:
                        raw = Path(f"/proc/{pid}/{where}").read_bytes()
                    except OSError:  # gone meanwhile
                        continue
                    if where == "cmdline":
                        self.seen.add(raw.split(b"\0", 1)[0].decode(errors="replace").rsplit("/", 1)[-1])
                    for name, value in self.secrets.items():
                        if value in raw:
                            program = raw.split(b"\0", 1)[0].decode(errors="replace") if where == "cmdline" else pid
                            self.hits.add((name, where, program))
            time.sleep(SCAN_EVERY_S)


def _secrets(sb) -> dict[str, str]:
    found = {p.stem: p.read_text().strip() for p in (sb.dir / "secrets").glob("*.pw")}
    found |= {f"{name}-root": (sb.dir / name / "root.pw").read_text().strip() for name in ("source", "target", "replica")}
    assert len(found) >= 8 and all(len(v) >= 8 for v in found.values())
    return found


def _logs(sb) -> list[Path]:
    """Every binary and relay log of the sandbox's servers."""
    return sorted(p for name in ("source", "target", "replica") for p in (sb.dir / name / "data").iterdir()
                  if p.name.split(".")[0] in ("binlog", "relay") and p.suffix[1:].isdigit())


def _decoded(path: Path) -> str:
    done = subprocess.run([procs.find_program("mariadb-binlog"), "--base64-output=decode-rows", "--verbose", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_password_reaches_a_log_a_file_an_output_or_a_process(tmp_path):
    with sandbox_mod.temporary(2000) as sb:
        secrets = _secrets(sb)
        # The watch can fail: a process carrying a secret on its command line is seen.
        with ProcessWatch({"planted": "planted-secret-0123"}) as check:
            subprocess.run(["sh", "-c", "sleep 0.3", "sh", "planted-secret-0123"], check=True)
        assert ("planted", "cmdline", "sh") in check.hits

        playbook = fast_playbook(sb, tmp_path)
        outputs = []
        with ProcessWatch(secrets) as watch:
            for args in (("plan",), ("start",), ("cutover", "--yes"), ("rollback", "--yes"), ("status",)):
                result = migrate(*args, "-p", str(playbook))
                outputs.append(result.stdout + result.stderr)
        assert not watch.hits, f"secrets seen in processes: {sorted(watch.hits)}"
        assert {"mydumper", "myloader"} & watch.seen, "the watch never saw the seed's tools: it did not watch"

        logs = _logs(sb)
        assert any(p.name.startswith("relay") for p in logs) and len(logs) >= 4
        texts = {p: p.read_bytes().decode("latin-1") + _decoded(p) for p in logs}
        for path, text in texts.items():
            leaked = [name for name, value in secrets.items() if value in text]
            assert not leaked, f"{path} carries the password(s) of {leaked}"
        created = [p for p, text in texts.items() if "CREATE USER 'repl'@'%' IDENTIFIED BY PASSWORD '*" in text]
        assert created, "the replication account's creation is not in any binlog: the search looked at nothing"

        written = [p for p in (sb.dir / "state").rglob("*") if p.is_file()]
        assert any(p.name == "journal.jsonl" for p in written) and any(p.name == "report.md" for p in written)
        everything = [*written, *(p for p in sb.dir.rglob("*") if p.is_file() and _written_by_the_tools(sb, p))]
        for path in everything:
            content = path.read_bytes()
            leaked = [name for name, value in secrets.items() if value.encode() in content]
            assert not leaked, f"{path} carries the password(s) of {leaked}"
        for output in outputs:
            assert not [name for name, value in secrets.items() if value in output]


def _written_by_the_tools(sb, path: Path) -> bool:
    """Files outside the servers' own data (binary logs are read decoded above; a replica's connection info
    holds its password by design), the secret files themselves and the root password files."""
    rel = path.relative_to(sb.dir).parts
    return not (rel[0] == "secrets" or rel[-1] == "root.pw" or (len(rel) > 1 and rel[1] == "data"))
