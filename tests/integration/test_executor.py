"""Both executors, the local one and SSH against the sandbox's real sshd, behave the same."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from migrate.adapters.executor import LocalExecutor, SshExecutor
from migrate.errors import CommandFailed, CommandTimeout, HostKeyUnknown
from migrate.playbook import Ssh


def ssh_settings(sandbox, **changes) -> Ssh:
    base = {"host": "127.0.0.1", "port": sandbox.ssh.port, "user": sandbox.ssh.user,
            "key_file": sandbox.ssh.client_key, "known_hosts": sandbox.ssh.known_hosts}
    return Ssh(**(base | changes))


@pytest.fixture(params=["local", "ssh"])
def executor(request, sandbox):
    ex = LocalExecutor() if request.param == "local" else SshExecutor(ssh_settings(sandbox))
    yield ex
    ex.close()


def test_runs_a_command_and_reports_output_and_exit_code(executor):
    result = executor.run(["sh", "-c", "echo out; echo err >&2; exit 0"], timeout=10)
    assert result.ok and result.text == "out\n" and result.stderr.strip() == "err"
    failed = executor.run(["sh", "-c", "exit 7"], timeout=10, check=False)
    assert failed.exit_status == 7


def test_a_failing_command_raises_with_its_exit_code_and_last_stderr(executor):
    with pytest.raises(CommandFailed) as exc:
        executor.run(["sh", "-c", "echo 'disk full' >&2; exit 3"], timeout=10)
    assert exc.value.exit_status == 3 and "disk full" in str(exc.value)


def test_a_command_past_its_timeout_is_stopped(executor, tmp_path):
    marker = f"/tmp/migrate-timeout-{os.getpid()}-{time.monotonic_ns()}"
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        executor.run(f"sleep 30; touch {marker}", timeout=1)
    assert time.monotonic() - started < 10
    time.sleep(1.5)
    assert not executor.exists(marker), "the command kept running after its timeout"


def test_pipeline_streams_between_commands_and_reports_every_stage(executor):
    result = executor.pipeline([["seq", "1", "100000"], ["wc", "-l"]], timeout=10)
    assert result.text.strip() == "100000" and result.stage_status == (0, 0)
    with pytest.raises(CommandFailed) as exc:
        executor.pipeline([["sh", "-c", "echo x; exit 5"], ["cat"]], timeout=10)
    assert exc.value.exit_status == 5 and "stages: 5 0" in str(exc.value)


def test_output_streams_into_a_file_on_the_host(executor, tmp_path):
    path = str(tmp_path / "out.txt")
    executor.run(["seq", "1", "3"], timeout=10, stdout_file=path)
    assert executor.read_file(path) == b"1\n2\n3\n"


def test_stderr_lines_reach_the_progress_callback_as_they_come(executor):
    lines: list[str] = []
    executor.run("for i in 1 2 3; do echo step$i >&2; done", timeout=10, on_stderr_line=lines.append)
    assert lines == ["step1", "step2", "step3"]


def test_environment_reaches_the_command_but_never_a_command_line(executor, monkeypatch):
    secret = f"s3cret-{time.monotonic_ns()}"
    staged: list[str] = []  # this command's own env files (other processes may stage theirs in /tmp meanwhile)
    stage = executor._stage_env
    monkeypatch.setattr(executor, "_stage_env", lambda env: staged.append(stage(env)) or staged[-1])
    seen_in_ps: list[str] = []

    def watch():
        for _ in range(20):
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
                    except OSError:
                        continue
                    if secret in line:
                        seen_in_ps.append(line)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = executor.run('sleep 1; printf %s "$MIGRATE_TEST_SECRET"', timeout=10, env={"MIGRATE_TEST_SECRET": secret})
    watcher.join()
    assert result.text == secret
    assert seen_in_ps == []
    assert len(staged) == 1 and staged[0].startswith("/tmp/.migrate-env-")
    assert not os.path.exists(staged[0]), "env file left behind"


def test_files_are_written_0600_and_copied_both_ways(executor, tmp_path):
    path = str(tmp_path / "defaults.cnf")
    executor.write_file(path, b"[client]\npassword=x\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    local = tmp_path / "local.txt"
    local.write_text("payload")
    executor.put(local, str(tmp_path / "remote.txt"), mode=0o640)
    executor.get(str(tmp_path / "remote.txt"), tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_text() == "payload"
    assert stat.S_IMODE(os.stat(tmp_path / "remote.txt").st_mode) == 0o640


def test_which_finds_tools_on_the_host(executor):
    assert executor.which("mariadb-dump")
    assert executor.which("no-such-tool-here") is None


def test_ssh_refuses_a_host_missing_from_known_hosts_and_says_how_to_trust_it(sandbox, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with SshExecutor(ssh_settings(sandbox, known_hosts=empty)) as ex, pytest.raises(HostKeyUnknown) as exc:
        ex.run(["true"], timeout=10)
    message = str(exc.value)
    assert "SHA256:" in message and f"ssh-keyscan -p {sandbox.ssh.port} 127.0.0.1 >> {empty}" in message


def test_ssh_refuses_a_host_whose_key_changed(sandbox, tmp_path):
    other = tmp_path / "other_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {other}")
    kind, key = (tmp_path / "other_key.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sandbox.ssh.port} {kind} {key}\n")
    with SshExecutor(ssh_settings(sandbox, known_hosts=known)) as ex, pytest.raises(HostKeyUnknown) as exc:
        ex.run(["true"], timeout=10)
    assert "does not match" in str(exc.value)


def test_ssh_with_a_missing_known_hosts_file_is_refused(sandbox, tmp_path):
    with SshExecutor(ssh_settings(sandbox, known_hosts=tmp_path / "nope")) as ex, pytest.raises(HostKeyUnknown):
        ex.run(["true"], timeout=10)
