"""Bad input never hurts: one row per case, each run as the real `migrate` command against a sandbox of this
module's own that no case may change. Every row: the documented exit code, a message naming the problem (and,
for input errors, what to do), no traceback, and the servers and the state exactly as before."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.procs import free_port
from tests.helpers import run_migrate


@pytest.fixture(scope="module")
def sb():
    with sandbox_mod.temporary(300) as sandbox:
        yield sandbox


@dataclass
class Case:
    id: str
    exit_code: int
    says: tuple[str, ...]  # phrases the message carries (case-insensitive)
    change: Callable[[dict, Path], None] | None = None  # edits the playbook's data; may write files in tmp
    text: Callable[[str, Path], str] | None = None  # or replaces the playbook's text
    command: tuple[str, ...] = ("start",)
    hint: bool = True  # the message also says what to do ("next:")
    extra: dict = field(default_factory=dict)


def _set(path: str, value) -> Callable[[dict, Path], None]:
    def change(data: dict, tmp: Path) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value(tmp) if callable(value) else value
    return change


def _drop(path: str) -> Callable[[dict, Path], None]:
    def change(data: dict, tmp: Path) -> None:
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]
    return change


def _file(name: str, content: bytes) -> Callable[[Path], str]:
    def write(tmp: Path) -> str:
        (tmp / name).write_bytes(content)
        (tmp / name).chmod(0o600)
        return str(tmp / name)
    return write


def _with_secret(key: str, transform: Callable[[str], bytes], name: str) -> Callable[[dict, Path], None]:
    """The secret at `key`.password_file rewritten by `transform` into a file of the case's own."""
    def change(data: dict, tmp: Path) -> None:
        node = data
        for part in key.split("."):
            node = node[part]
        original = Path(node["password_file"]).read_text().strip()
        node["password_file"] = _file(name, transform(original))(tmp)
    return change


CASES = [
    # -- the playbook file ----------------------------------------------------------------------------
    Case("playbook-missing", 2, ("no such playbook",), text=lambda t, tmp: None),
    Case("playbook-is-a-directory", 2, ("cannot read the playbook",), text=lambda t, tmp: "<dir>", hint=False),
    Case("yaml-malformed", 2, ("not valid yaml", "line"), text=lambda t, tmp: t + "\ncutover: [unclosed\n", hint=False),
    Case("yaml-empty", 2, ("empty",), text=lambda t, tmp: "", hint=False),
    Case("yaml-a-list", 2, ("must be a mapping",), text=lambda t, tmp: "- a\n- b\n", hint=False),
    Case("yaml-duplicate-key", 2, ("cutover",), text=lambda t, tmp: t + "\ncutover: {}\n", hint=False),
    Case("unknown-top-key", 2, ("sourc",), _set("sourc", {"host": "x"})),
    Case("unknown-nested-key", 2, ("max_lag",), _set("cutover.max_lag", 3)),
    Case("port-not-a-number", 2, ("target.port",), _set("target.port", "abc")),
    Case("port-out-of-range", 2, ("target.port",), _set("target.port", 70000)),
    Case("negative-lag", 2, ("max_lag_s",), _set("cutover.max_lag_s", -1)),
    Case("unknown-write-block", 2, ("write_block",), _set("cutover.write_block", "bogus")),
    Case("source-user-missing", 2, ("source.user",), _drop("source.user")),
    Case("app-users-not-a-list", 2, ("app_users",), _set("cutover.app_users", {"a": 1})),
    # -- secrets ----------------------------------------------------------------------------------
    Case("secret-file-missing", 2, ("replication", "does not exist"), _set("replication.password_file",
                                                                          lambda tmp: str(tmp / "nope.pw"))),
    Case("secret-file-is-a-directory", 2, ("replication", "directory"),
         _set("replication.password_file", lambda tmp: str(tmp))),
    Case("secret-file-empty", 2, ("target", "empty"), _set("target.password_file", _file("empty.pw", b"\n"))),
    Case("secret-file-not-utf8", 2, ("target", "utf-8"), _set("target.password_file", _file("latin.pw", b"p\xe4ss\n"))),
    Case("secret-env-unset", 2, ("MIGRATE_NO_SUCH_VAR",),
         lambda d, tmp: d["replication"].update(password_file=None, password_env="MIGRATE_NO_SUCH_VAR")),
    # A UTF-8 BOM (Windows editors) and CRLF line ends are not part of a password: read as intended.
    Case("secret-file-with-bom", 0, (), _with_secret("target", lambda p: b"\xef\xbb\xbf" + p.encode() + b"\n",
                                                     "bom.pw"), command=("plan",), hint=False),
    Case("secret-file-with-crlf", 0, (), _with_secret("source", lambda p: p.encode() + b"\r\n", "crlf.pw"),
         command=("plan",), hint=False),
    # -- where migrate keeps its state ------------------------------------------------------------------
    Case("state-dir-under-a-file", 2, ("state", "state_dir"), _set("state_dir", lambda tmp: str(_afile(tmp) / "x"))),
    Case("state-dir-unwritable", 2, ("state", "state_dir"), _set("state_dir", "/proc/migrate-state")),
    Case("state-dir-unwritable-status", 2, ("state", "state_dir"), _set("state_dir", "/proc/migrate-state"),
         command=("status",)),
    # -- servers that say no, or are not there -------------------------------------------------------
    Case("source-wrong-password", 1, ("source", "access denied"), _with_secret("source", lambda p: b"wrong-" +
                                                                               p.encode(), "wrong-src.pw")),
    Case("target-wrong-password", 1, ("target", "access denied"), _with_secret("target", lambda p: b"wrong-" +
                                                                               p.encode(), "wrong-tgt.pw")),
    Case("source-unreachable", 1, ("source", "connect"), _set("source.port", lambda tmp: free_port())),
    Case("target-unreachable", 1, ("target", "connect"), _set("target.port", lambda tmp: free_port())),
    Case("ssh-key-missing", 2, ("key_file",), _set("target.ssh.key_file", lambda tmp: str(tmp / "no-key"))),
    # -- the command line -----------------------------------------------------------------------------
    Case("unknown-command", 2, ("invalid choice",), command=("frobnicate",), hint=False),
    Case("cutover-without-playbook", 2, ("-p/--playbook",), command=("cutover", "--yes", "--no-p"), hint=False),
]


def _afile(tmp: Path) -> Path:
    (tmp / "a-file").write_text("x")
    return tmp / "a-file"


def _servers(sb) -> dict:
    """What a case must not change: each server's binary-log position, schemas and replication, and the state."""
    out = {}
    for name in ("source", "target"):
        with getattr(sb, name).root() as s:
            out[name] = (s.value("SELECT @@GLOBAL.gtid_binlog_pos"), s.value("SELECT @@GLOBAL.gtid_slave_pos"),
                         sorted(r["Database"] for r in s.run("SHOW DATABASES")),
                         bool(s.run("SHOW ALL SLAVES STATUS")))
    state = sb.dir / "state" / "sandbox" / "state.json"
    out["state"] = state.read_text() if state.exists() else None
    return out


def _playbook(sb, case: Case, tmp: Path) -> str:
    original = sb.playbook_path.read_text()
    path = tmp / "playbook.yml"
    if case.text is not None:
        text = case.text(original, tmp)
        if text is None:
            return str(tmp / "missing.yml")
        if text == "<dir>":
            return str(tmp)
        path.write_text(text)
    else:
        data = yaml.safe_load(original)
        if case.change:
            case.change(data, tmp)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_never_hurts(sb, case, tmp_path):
    before = _servers(sb)
    playbook = _playbook(sb, case, tmp_path)
    args = [*case.command]
    if "--no-p" in args:
        args.remove("--no-p")
    elif case.command[0] != "frobnicate":
        args += ["-p", playbook]
    started = time.monotonic()
    result = run_migrate(*args, timeout=120)
    said = result.stdout + result.stderr
    assert "Traceback" not in said, said
    assert result.returncode == case.exit_code, f"exit {result.returncode}, wanted {case.exit_code}:\n{said[-3000:]}"
    for phrase in case.says:
        assert phrase.lower() in said.lower(), f"{phrase!r} not in:\n{said[-3000:]}"
    if case.hint:
        assert "next:" in said, said[-3000:]
    assert _servers(sb) == before, "a bad input changed a server or the state"
    assert time.monotonic() - started < 60


def test_the_table_has_enough_rows():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)
    assert json.dumps([c.id for c in CASES])  # ids are plain strings
