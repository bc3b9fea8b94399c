"""Repointing the application: the sandbox's real HAProxy in front of the real source and target, and
the operator's own command. Every HAProxy test leaves the application pointed at the source."""

from __future__ import annotations

import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.adapters.db import DatabaseError, quote_account, quote_string
from migrate.adapters.haproxy import HaproxyAdmin, HaproxyError, HaproxyUnreachable, ServerState
from migrate.capabilities.repoint import (
    CommandRepointer,
    HaproxyRepointer,
    RepointCheckFailed,
    RepointFailed,
    Route53Repointer,
    SshFileRepointer,
    for_playbook,
)
from migrate.errors import MigrateError
from migrate.playbook import (
    Aws,
    CommandRepoint,
    HaproxyRepoint,
    Repoint,
    Route53Repoint,
    Ssh,
    SshFileRepoint,
)
from migrate.sandbox import procs
from migrate.sandbox.haproxy import BACKEND, SERVER
from tests.helpers import endpoint_as, open_session

ACCOUNT = "repoint_t"


@pytest.fixture(scope="module")
def account(sandbox) -> Iterator[tuple[str, str]]:
    """A throwaway account that exists on both the source and the target (app_rw is on the source only),
    created and dropped without binary logging."""
    password = secrets.token_hex(12)
    for server in (sandbox.source, sandbox.target):
        with server.root() as root:
            root.run("SET SESSION sql_log_bin = 0")
            root.run(f"CREATE OR REPLACE USER {quote_account(ACCOUNT)} IDENTIFIED BY {quote_string(password)}")
    yield ACCOUNT, password
    for server in (sandbox.source, sandbox.target):
        with server.root() as root:
            root.run("SET SESSION sql_log_bin = 0")
            root.run(f"DROP USER IF EXISTS {quote_account(ACCOUNT)}")


@pytest.fixture
def admin(sandbox) -> HaproxyAdmin:
    return HaproxyAdmin(sandbox.haproxy.admin_socket)


@pytest.fixture
def repointer(sandbox, admin) -> Iterator[HaproxyRepointer]:
    """The sandbox's HAProxy as a playbook names it; afterwards, whatever happened, it points at the
    source again (other tests share this sandbox)."""
    yield HaproxyRepointer(HaproxyRepoint(socket=sandbox.haproxy.admin_socket))
    admin.set_server_addr(BACKEND, SERVER, "127.0.0.1", sandbox.ports["source"])


def app_port(sandbox, account) -> int:
    """The server a new application connection through HAProxy lands on."""
    with open_session(endpoint_as(sandbox.ports["haproxy"], *account)) as app:
        return app.value("SELECT @@port")


def sessions_shut(sentence: str) -> int:
    match = re.search(r"shut the (\d+) sessions? still open", sentence)
    assert match, sentence
    return int(match.group(1))


# -- HAProxy ---------------------------------------------------------------------------------------


def test_haproxy_repoint_sends_new_connections_to_the_target(sandbox, account, repointer):
    source, target = sandbox.ports["source"], sandbox.ports["target"]
    assert app_port(sandbox, account) == source

    said = repointer.point_to("127.0.0.1", target)

    assert f"now sends new connections to 127.0.0.1:{target} instead of 127.0.0.1:{source}" in said
    assert app_port(sandbox, account) == target


def test_a_session_open_before_the_repoint_is_shut_and_a_reconnect_lands_on_the_target(
        sandbox, account, repointer, admin):
    endpoint = endpoint_as(sandbox.ports["haproxy"], *account)
    old = open_session(endpoint)
    try:
        assert old.value("SELECT @@port") == sandbox.ports["source"]
        assert admin.backend_sessions(BACKEND, SERVER) >= 1

        said = repointer.point_to("127.0.0.1", sandbox.ports["target"])

        assert sessions_shut(said) >= 1
        with pytest.raises(DatabaseError):
            old.value("SELECT @@port")
    finally:
        old.close()
    with open_session(endpoint) as again:
        assert again.value("SELECT @@port") == sandbox.ports["target"]


def test_current_and_points_to_read_haproxy_and_pointing_back_restores_the_source(sandbox, account, repointer,
                                                                                  admin):
    source, target = sandbox.ports["source"], sandbox.ports["target"]
    assert repointer.current() == ("127.0.0.1", source)
    assert repointer.points_to("127.0.0.1", source) is True
    assert repointer.points_to("127.0.0.1", target) is False

    repointer.point_to("127.0.0.1", target)
    assert repointer.current() == ("127.0.0.1", target)
    assert repointer.points_to("127.0.0.1", target) is True
    # The real thing, read without the repointer: HAProxy's own answer.
    row = admin.command(f"show servers state {BACKEND}").splitlines()[2].split()
    assert (row[1], row[3], row[4], row[18]) == (BACKEND, SERVER, "127.0.0.1", str(target))
    assert admin.server_state(BACKEND, SERVER).port == target

    said = repointer.point_to("127.0.0.1", source)
    assert f"instead of 127.0.0.1:{target}" in said
    assert repointer.points_to("127.0.0.1", source) is True
    assert app_port(sandbox, account) == source


def test_pointing_twice_at_the_same_address_says_it_already_pointed_there(sandbox, repointer):
    said = repointer.point_to("127.0.0.1", sandbox.ports["source"])
    assert said.startswith(f"HAProxy {BACKEND}/{SERVER} already pointed to 127.0.0.1:{sandbox.ports['source']}")


def test_a_host_name_is_resolved_to_an_ip_for_haproxy_and_the_sentence_says_so(sandbox, repointer):
    ip = socket.getaddrinfo("localhost", sandbox.ports["target"], type=socket.SOCK_STREAM)[0][4][0]
    assert "resolved to an IP first" in repointer.describe("localhost", sandbox.ports["target"])

    said = repointer.point_to("localhost", sandbox.ports["target"])

    assert f"(localhost resolved to {ip})" in said
    assert repointer.current() == (ip, sandbox.ports["target"])
    assert repointer.points_to("localhost", sandbox.ports["target"]) is True


def test_server_state_reads_address_states_and_sessions_from_haproxy(sandbox, account, admin):
    with open_session(endpoint_as(sandbox.ports["haproxy"], *account)):
        state = admin.server_state(BACKEND, SERVER)
    assert isinstance(state, ServerState)
    assert (state.addr, state.port) == ("127.0.0.1", sandbox.ports["source"])
    assert state.op_state_name == "running" and not state.in_maintenance and state.sessions >= 1
    assert state.describe().startswith(f"{BACKEND}/{SERVER} -> 127.0.0.1:{sandbox.ports['source']} (running, ready")


def test_dry_run_description_changes_nothing(sandbox, repointer):
    before = repointer.current()
    text = repointer.describe("127.0.0.1", sandbox.ports["target"])
    assert f"set HAProxy {BACKEND}/{SERVER} to 127.0.0.1:{sandbox.ports['target']}" in text
    assert "shut the sessions still open" in text
    assert repointer.current() == before


def test_check_reports_an_admin_socket_and_where_the_server_points(sandbox, repointer):
    said = repointer.check()
    assert "answers at level admin" in said and f"127.0.0.1:{sandbox.ports['source']}" in said


def test_a_missing_socket_gives_a_clear_error_with_a_hint(tmp_path):
    missing = tmp_path / "admin.sock"
    with pytest.raises(HaproxyUnreachable) as exc:
        HaproxyAdmin(missing).command("show info")
    assert f"{missing} does not exist" in exc.value.message and "stats socket" in exc.value.hint
    with pytest.raises(RepointCheckFailed) as check:
        HaproxyRepointer(HaproxyRepoint(socket=missing)).check()
    assert "does not exist" in str(check.value)


def test_a_stale_socket_file_nobody_listens_on_is_reported_as_refused(tmp_path):
    stale = Path(tempfile.mkdtemp(prefix="mig-", dir="/tmp")) / "a.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(str(stale))  # bound, never listening, then closed: the file stays
        with pytest.raises(HaproxyUnreachable) as exc:
            HaproxyAdmin(stale).command("show info")
        assert "refused the connection" in exc.value.message and "is HAProxy running" in exc.value.message
    finally:
        shutil.rmtree(stale.parent, ignore_errors=True)


def test_an_unknown_backend_or_server_gives_a_clear_error(sandbox, admin):
    with pytest.raises(HaproxyError) as backend:
        admin.server_state("nope", SERVER)
    assert "Can't find backend" in backend.value.message and "haproxy.cfg" in backend.value.hint
    with pytest.raises(HaproxyError) as server:
        admin.server_state(BACKEND, "nope")
    assert f"backend {BACKEND} has no server 'nope' (it has: {SERVER})" in server.value.message
    with pytest.raises(HaproxyError) as setting:
        admin.set_server_addr(BACKEND, "nope", "127.0.0.1", sandbox.ports["target"])
    assert "No such server" in setting.value.message
    with pytest.raises(HaproxyError) as shutting:
        admin.shutdown_sessions("nope", SERVER)
    assert "No such backend" in shutting.value.message
    with pytest.raises(RepointCheckFailed):
        HaproxyRepointer(HaproxyRepoint(socket=sandbox.haproxy.admin_socket, server="nope")).check()
    assert admin.server_state(BACKEND, SERVER).port == sandbox.ports["source"]


def test_haproxy_error_answers_and_bad_values_are_refused_before_or_by_haproxy(sandbox, admin):
    with pytest.raises(HaproxyError) as unknown:
        admin.command("frobnicate the backend")
    assert unknown.value.message.endswith(": Unknown command")
    with pytest.raises(HaproxyError, match="no ';' or newline"):
        admin.command("show info; shutdown sessions server mysql/db")
    with pytest.raises(HaproxyError, match="not a valid HAProxy name"):
        admin.set_server_addr(BACKEND, "db;x", "127.0.0.1", 3306)
    with pytest.raises(HaproxyError, match=r"port 70000 is not a TCP port"):  # HAProxy would take it as 4464
        admin.set_server_addr(BACKEND, SERVER, "127.0.0.1", 70000)
    with pytest.raises(HaproxyError, match="cannot resolve 'no-such-host.invalid'"):
        admin.set_server_addr(BACKEND, SERVER, "no-such-host.invalid", 3306)
    assert admin.server_state(BACKEND, SERVER).port == sandbox.ports["source"]


@pytest.fixture
def user_level_haproxy() -> Iterator[Path]:
    """A private HAProxy whose socket is only `level user`, as many haproxy.cfg files ship."""
    base = Path(tempfile.mkdtemp(prefix="mig-", dir="/tmp"))
    sock = base / "user.sock"
    (base / "haproxy.cfg").write_text(f"""global
    stats socket {sock} mode 600 level user
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend app_db
    bind 127.0.0.1:{procs.free_port()}
    default_backend {BACKEND}
backend {BACKEND}
    server {SERVER} 127.0.0.1:{procs.free_port()}
""")
    proc = subprocess.Popen([procs.find_program("haproxy"), "-db", "-f", str(base / "haproxy.cfg")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(base, ignore_errors=True)


def test_a_socket_below_level_admin_is_refused_by_check_and_by_haproxy(user_level_haproxy):
    repointer = HaproxyRepointer(HaproxyRepoint(socket=user_level_haproxy))
    with pytest.raises(RepointCheckFailed) as check:
        repointer.check()
    assert "answers at level user" in check.value.message and "level admin" in check.value.hint
    with pytest.raises(HaproxyError) as denied:
        repointer.point_to("127.0.0.1", 3306)
    assert "Permission denied" in denied.value.message and "level admin" in denied.value.hint


def test_haproxy_on_another_host_goes_through_ssh(tmp_path):
    ssh = Ssh(host="lb1.internal", user="ubuntu")
    repointer = HaproxyRepointer(HaproxyRepoint(socket=tmp_path / "admin.sock", via_ssh=ssh))
    assert f"{tmp_path / 'admin.sock'} on ubuntu@lb1.internal:22" in repointer.describe("10.0.1.20", 3306)


# -- the operator's command ------------------------------------------------------------------------


def test_command_repointer_substitutes_quoted_host_and_port_and_exports_them(tmp_path):
    out = tmp_path / "seen"
    run = (f"printf '%s|%s|%s|%s\\n' {{host}} {{port}} \"$MIGRATE_TARGET_HOST\" \"$MIGRATE_TARGET_PORT\" "
           f"> {shlex.quote(str(out))}; echo repointed")
    repointer = CommandRepointer(CommandRepoint(run=run))
    host = "db 1's;touch pwned"  # a value that would run a second command if it were not quoted

    said = repointer.point_to(host, 3307)

    assert out.read_text() == f"{host}|3307|{host}|3307\n"
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert f"is pointed to {host}:3307" in said and said.endswith("it said: repointed")
    assert "MIGRATE_TARGET_HOST" in repointer.describe("10.0.1.20", 3306)


def test_a_failing_repoint_command_raises_with_its_exit_code_and_stderr():
    run = "echo 'lb1: connection refused' >&2; echo 'giving up' >&2; exit 7"
    with pytest.raises(RepointFailed) as exc:
        CommandRepointer(CommandRepoint(run=run)).point_to("10.0.1.20", 3306)
    assert "exited 7" in exc.value.message
    assert "lb1: connection refused / giving up" in exc.value.message
    assert isinstance(exc.value, MigrateError) and exc.value.hint


def test_a_repoint_command_that_hangs_is_stopped_at_its_timeout():
    with pytest.raises(RepointFailed, match="did not finish within 0.5 s"):
        CommandRepointer(CommandRepoint(run="sleep 30"), timeout_s=0.5).point_to("10.0.1.20", 3306)


def test_where_a_command_points_the_application_is_unknowable():
    repointer = CommandRepointer(CommandRepoint(run="true {host} {port}"))
    assert repointer.current() is None and repointer.points_to("10.0.1.20", 3306) is None


def test_check_finds_the_commands_program_and_refuses_one_that_does_not_exist(tmp_path):
    assert f"program sh is {shutil.which('sh')}" in CommandRepointer(CommandRepoint(run="FOO=1 sh -c 'exit 0' {host}")).check()
    with pytest.raises(RepointCheckFailed, match="not an executable") as missing:
        CommandRepointer(CommandRepoint(run="no-such-repoint-tool {host} {port}")).check()
    assert missing.value.hint
    script = tmp_path / "repoint.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(RepointCheckFailed, match="exists but is not executable"):
        CommandRepointer(CommandRepoint(run=f"{script} {{host}} {{port}}")).check()
    script.chmod(0o755)
    assert str(script) in CommandRepointer(CommandRepoint(run=f"{script} {{host}} {{port}}")).check()


# -- choosing one ----------------------------------------------------------------------------------


def test_for_playbook_picks_haproxy_or_command(sandbox):
    haproxy = Repoint(method="haproxy", haproxy=HaproxyRepoint(socket=sandbox.haproxy.admin_socket))
    assert isinstance(for_playbook(haproxy), HaproxyRepointer)
    assert isinstance(for_playbook(Repoint(method="command", command=CommandRepoint(run="true"))),
                      CommandRepointer)


def test_for_playbook_builds_route53_and_ssh_file_without_touching_them():
    route53 = Repoint(method="route53", route53=Route53Repoint(zone_id="Z123", record="db.internal."))
    ssh_file = Repoint(method="ssh_file", ssh_file=SshFileRepoint(
        hosts=[Ssh(host="app1", user="ubuntu")], path=Path("/etc/app/db.conf"), template="{host}:{port}"))
    assert isinstance(for_playbook(route53, aws=Aws(region="us-east-1")), Route53Repointer)
    assert isinstance(for_playbook(ssh_file), SshFileRepointer)
