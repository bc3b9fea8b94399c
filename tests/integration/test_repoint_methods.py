"""The route53, ssh_file and haproxy-over-SSH repoints on real things: moto's Route53 (behind a fault proxy of the
suite's own), two application hosts reached by real sshd with a real HAProxy each, the sandbox's HAProxy through
its sshd. Each method: its effect on the real thing, its failure injection (the original state restored and
checked), then a cutover under load that fails at the repoint (exit 3, the application back on the source) and
one that succeeds, losing no acknowledged write. The e2e tests of a method come last in its block: they migrate
its sandbox for good."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from migrate.adapters.db import connect
from migrate.adapters.haproxy import HaproxyAdmin, HaproxyError, HaproxyUnreachable
from migrate.capabilities import replication
from migrate.capabilities.repoint import (
    Caution,
    HaproxyRepointer,
    RepointFailed,
    Route53Repointer,
    SshFileRepointer,
)
from migrate.playbook import HaproxyRepoint, Route53Repoint, Ssh, load
from migrate.sandbox import procs
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.aws import RECORD
from migrate.sandbox.haproxy import BACKEND, SERVER
from migrate.sandbox.repoints import app_endpoint, app_hosts, app_record
from migrate.sandbox.sandbox import Options
from migrate.sandbox.workload import AppWorkload
from tests.aws_faults import AwsFaults
from tests.helpers import run_migrate
from tests.killing import Case, kill_then_recover
from tests.switching import fast_playbook, journal, missing_orders, started_sandbox, to_phase

ROWS = 2000


def started(repoint: str) -> Iterator[sandbox_mod.Sandbox]:
    with started_sandbox(ROWS, Options(repoint=repoint)) as sb:
        yield sb


def server_id_through(endpoint) -> int:
    with connect(endpoint, attempts=1) as app:
        return app.value("SELECT @@server_id")  # source 1, target 2


def cutover_under_load(sb, playbook):
    """`migrate cutover --yes` while the application places ~200 orders/s through its own endpoint."""
    load_ = AppWorkload(app_endpoint(sb), rate=200, threads=4).start()
    try:
        result = run_migrate("cutover", "-p", str(playbook), "--yes")
    finally:
        writes = load_.stop()
    return result, writes


def assert_back_on_source(sb, writes) -> None:
    """The application writes on the source again, and none of its acknowledged orders is missing there."""
    assert server_id_through(app_endpoint(sb)()) == 1
    with connect(app_endpoint(sb)(), attempts=1) as app:
        app.run("CALL shop.place_order(1, 'SKU-0001', 1, 100, @o)")
    with sb.source.root() as s:
        assert writes.acked_order_ids and missing_orders(s, writes.acked_order_ids) == []


# -- route53 -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def r53() -> Iterator[sandbox_mod.Sandbox]:
    yield from started("route53")


def route53(sb, endpoint_url: str | None = None, ttl: int = 5, **kw) -> Route53Repointer:
    aws = sb.aws.settings.model_copy(update={"endpoint_url": endpoint_url}) if endpoint_url else sb.aws.settings
    return Route53Repointer(Route53Repoint(zone_id=sb.aws.zone_id(), record=RECORD, ttl=ttl), aws,
                            port=sb.ports["source"], **kw)


def record(sb) -> tuple[str, str, int]:
    rs = app_record(sb)
    return rs["Type"], rs["ResourceRecords"][0]["Value"], rs["TTL"]


def test_route53_moves_the_record_the_application_follows_and_restore_puts_it_back(r53):
    repointer, port = route53(r53), r53.ports["source"]
    assert record(r53) == ("A", "127.0.0.2", 5) and server_id_through(app_endpoint(r53)()) == 1
    saved = repointer.snapshot("127.0.0.3", port)

    said = repointer.point_to("127.0.0.3", port)

    assert "is now A 127.0.0.3 (TTL 5 s) instead of A 127.0.0.2 (TTL 5 s)" in said
    assert record(r53) == ("A", "127.0.0.3", 5) and repointer.points_to("127.0.0.3", port)
    assert server_id_through(app_endpoint(r53)()) == 2
    assert "put back to A 127.0.0.2" in repointer.restore(saved)
    assert record(r53) == ("A", "127.0.0.2", 5) and server_id_through(app_endpoint(r53)()) == 1


def test_route53_restores_a_cname_to_the_rds_endpoint_exactly_and_refuses_another_port(r53):
    repointer, port = route53(r53), r53.ports["source"]
    with pytest.raises(RepointFailed, match=f"the application connects to port {port}"):
        repointer.point_to("127.0.0.3", port + 1)
    cname = {"Name": RECORD, "Type": "CNAME", "TTL": 300, "ResourceRecords": [{"Value": "shop-prod.rds.example."}]}
    a_record = app_record(r53)
    client = repointer.client
    client.change_resource_record_sets(HostedZoneId=repointer.zone, ChangeBatch={"Changes": [
        {"Action": "DELETE", "ResourceRecordSet": a_record}, {"Action": "CREATE", "ResourceRecordSet": cname}]})
    try:
        assert isinstance(repointer.check(), Caution) and "TTL of 300 s" in repointer.check()
        saved = repointer.snapshot("127.0.0.3", port)
        repointer.point_to("127.0.0.3", port)
        assert record(r53) == ("A", "127.0.0.3", 5)
        repointer.restore(saved)
        assert app_record(r53) == cname
    finally:
        repointer.restore({"record_set": a_record})
    assert record(r53) == ("A", "127.0.0.2", 5)


def test_route53_an_aws_error_fails_the_repoint_and_leaves_the_record(r53):
    with AwsFaults(r53.aws.endpoint_url) as faults:
        faults.fail_change_when(b"127.0.0.3")
        with pytest.raises(RepointFailed) as exc:
            route53(r53, faults.url).point_to("127.0.0.3", r53.ports["source"])
    assert "InvalidChangeBatch: injected by the test" in exc.value.message and faults.failed == 1
    assert record(r53) == ("A", "127.0.0.2", 5)


def test_route53_an_insync_that_never_comes_fails_and_the_saved_record_is_put_back(r53):
    with AwsFaults(r53.aws.endpoint_url) as faults:
        faults.pending = True
        repointer = route53(r53, faults.url, insync_timeout_s=1, poll_s=0.2)
        saved = repointer.snapshot("127.0.0.3", r53.ports["source"])
        with pytest.raises(RepointFailed, match="did not report it INSYNC within 1 s \\(still PENDING\\)"):
            repointer.point_to("127.0.0.3", r53.ports["source"])
    assert record(r53)[1] == "127.0.0.3"  # Route53 took it: the rollback's restore must put it back
    route53(r53).restore(saved)
    assert record(r53) == ("A", "127.0.0.2", 5)


def test_route53_cutover_whose_change_aws_refuses_rolls_back_and_exits_3(r53, tmp_path):
    with AwsFaults(r53.aws.endpoint_url) as faults:
        faults.fail_change_when(b"127.0.0.3")
        playbook = fast_playbook(r53, tmp_path, aws={"endpoint_url": faults.url})
        result, writes = cutover_under_load(r53, playbook)
    assert result.returncode == 3, result.stdout + result.stderr[-3000:]
    assert "InvalidChangeBatch" in result.stdout and "rolled back" in result.stdout
    assert record(r53) == ("A", "127.0.0.2", 5)
    assert_back_on_source(r53, writes)


def test_route53_cutover_whose_change_never_comes_insync_rolls_back_and_exits_3(r53, tmp_path):
    """Route53 takes the change but never reports it INSYNC within cutover.timeout_s: the cutover rolls back, the
    saved record is put back (its own INSYNC is not waited for past the timeout: it is said instead)."""
    with AwsFaults(r53.aws.endpoint_url) as faults:
        faults.pending = True
        playbook = fast_playbook(r53, tmp_path, aws={"endpoint_url": faults.url}, cutover={"timeout_s": 2})
        result, writes = cutover_under_load(r53, playbook)
    assert result.returncode == 3, result.stdout + result.stderr[-3000:]
    assert "did not report it INSYNC within 2 s" in result.stdout and "rolled back" in result.stdout
    assert record(r53) == ("A", "127.0.0.2", 5)
    assert_back_on_source(r53, writes)


KILLED_IN_THE_REPOINT = [
    Case("cutover", "repoint", "middle", "rollback", refused=True),  # moved: only the cutover can finish
    Case("rollback", "repoint", "start", "cutover"),  # about to move back: the cutover undoes the rollback
]


@pytest.mark.parametrize("case", KILLED_IN_THE_REPOINT, ids=str)
def test_route53_switch_killed_in_its_repoint_ends_with_the_record_on_the_primary(r53, tmp_path, case):
    on = kill_then_recover(r53, fast_playbook(r53, tmp_path), case)
    assert record(r53)[1] == getattr(r53, on).host


def test_route53_cutover_under_load_loses_nothing(r53, tmp_path):
    result, writes = cutover_under_load(r53, fast_playbook(r53, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert record(r53) == ("A", "127.0.0.3", 5) and server_id_through(app_endpoint(r53)()) == 2
    with r53.target.root() as t:
        assert writes.acked_order_ids and missing_orders(t, writes.acked_order_ids) == []


# -- ssh_file ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sf() -> Iterator[sandbox_mod.Sandbox]:
    yield from started("ssh_file")


def failing_on_host_2(sb) -> str:
    """The sandbox's reload, refused on the second application host (told apart by the sshd port it came in by)."""
    port2 = app_hosts(sb)[1][0].port
    reload = load(sb.playbook_path).cutover.repoint.ssh_file.reload
    return f'if [ "${{SSH_CONNECTION##* }}" = {port2} ]; then echo "host 2 refuses the reload" >&2; exit 1; fi; {reload}'


def files(sb) -> list[str]:
    return [haproxy.backend_config.read_text() for _, haproxy in app_hosts(sb)]


def ports_through(sb) -> list[int]:
    """Where a new connection through each application host's HAProxy lands (the backend's port)."""
    return [HaproxyAdmin(h.admin_socket).server_state(BACKEND, SERVER).port for _, h in app_hosts(sb)]


def test_ssh_file_rewrites_each_host_and_its_haproxy_sends_new_connections_to_the_target(sf):
    settings = load(sf.playbook_path).cutover.repoint.ssh_file
    repointer, source, target = SshFileRepointer(settings), sf.ports["source"], sf.ports["target"]
    original = files(sf)
    assert repointer.points_to("127.0.0.1", source) and ports_through(sf) == [source, source]
    held = connect(app_endpoint(sf)(), attempts=1)  # open across the reload: the reload itself does not cut it
    try:
        said = repointer.point_to("127.0.0.1", target)
        assert "on 2 of 2 host(s)" in said and held.value("SELECT 1") == 1
    finally:
        held.close()
    assert files(sf) == [app_hosts(sf)[0][1].backend_section("127.0.0.1", target)] * 2
    assert [(h.base / "backend.cfg.migrate-previous").read_text() for _, h in app_hosts(sf)] == original
    assert ports_through(sf) == [target, target] and server_id_through(app_endpoint(sf)()) == 2
    repointer.point_to("127.0.0.1", source)
    assert files(sf) == original and ports_through(sf) == [source, source]


def test_ssh_file_a_reload_failing_on_host_2_puts_host_1_back_and_names_host_2(sf):
    settings = load(sf.playbook_path).cutover.repoint.ssh_file
    repointer = SshFileRepointer(settings.model_copy(update={"reload": failing_on_host_2(sf)}))
    original, source = files(sf), sf.ports["source"]
    port1, port2 = (ssh.port for ssh, _ in app_hosts(sf))

    with pytest.raises(RepointFailed) as exc:
        repointer.point_to("127.0.0.1", sf.ports["target"])

    message = exc.value.message
    assert message.startswith(f"host 2 of 2 (root@127.0.0.1:{port2}) failed") and "host 2 refuses" in message
    assert f"restored the previous backend.cfg and reloaded on root@127.0.0.1:{port1}" in message
    assert files(sf) == original and ports_through(sf) == [source, source]
    assert server_id_through(app_endpoint(sf)()) == 1


def test_ssh_file_check_refuses_a_bad_template_on_each_host_before_anything_changes(sf):
    settings = load(sf.playbook_path).cutover.repoint.ssh_file
    original = files(sf)
    SshFileRepointer(settings).prepare("127.0.0.1", sf.ports["target"])  # the sandbox's template passes
    broken = SshFileRepointer(settings.model_copy(update={"template": "backend mysql\n    srv db {host}:{port}\n"}))

    with pytest.raises(RepointFailed) as exc:
        broken.prepare("127.0.0.1", sf.ports["target"])

    assert "`haproxy -c -q -f haproxy.cfg -f {file}` refuses the file rendered for the new primary" in exc.value.message
    assert "nothing was changed" in exc.value.hint
    assert files(sf) == original and ports_through(sf) == [sf.ports["source"]] * 2
    assert not [p for _, h in app_hosts(sf) for p in h.base.glob("*.migrate-check")]


def test_ssh_file_cutover_whose_template_fails_its_check_stops_at_the_gates_without_blocking(sf, tmp_path):
    playbook = fast_playbook(sf, tmp_path, cutover={"repoint": {"ssh_file": {"template": "not haproxy {host}:{port}"}}})
    original = files(sf)
    result, writes = cutover_under_load(sf, playbook)
    assert result.returncode != 0 and "refuses the file rendered for the new primary" in result.stdout, result.stdout
    assert files(sf) == original and server_id_through(app_endpoint(sf)()) == 1
    events = journal(sf)
    run = next(e["run_id"] for e in reversed(events) if e.get("step") == "gates")
    assert not [e for e in events if e.get("run_id") == run and e.get("step") == "block_writes"]
    with sf.source.root() as s:
        assert s.variable("read_only") == 0 and missing_orders(s, writes.acked_order_ids) == []
    assert writes.failures == 0 and writes.acked_order_ids


@pytest.mark.parametrize("case", KILLED_IN_THE_REPOINT, ids=str)
def test_ssh_file_switch_killed_in_its_repoint_ends_with_every_host_on_the_primary(sf, tmp_path, case):
    on = kill_then_recover(sf, fast_playbook(sf, tmp_path), case)
    assert ports_through(sf) == [sf.ports[on]] * 2


def test_ssh_file_cutover_under_load_loses_nothing(sf, tmp_path):
    result, writes = cutover_under_load(sf, fast_playbook(sf, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert ports_through(sf) == [sf.ports["target"]] * 2 and server_id_through(app_endpoint(sf)()) == 2
    with sf.target.root() as t:
        assert writes.acked_order_ids and missing_orders(t, writes.acked_order_ids) == []



def test_ssh_file_cutover_whose_reload_fails_on_host_2_rolls_back_and_exits_3(sf, tmp_path):
    """Host 1 sends the application to the promoted target until it is put back; the target takes no write before
    the repoint is done (open_writes), so every acknowledged order is on the source, and the target still mirrors
    it, replicating."""
    to_phase(sf, fast_playbook(sf, tmp_path), "replicating")  # the cutover above is rolled back first
    playbook = fast_playbook(sf, tmp_path, cutover={"repoint": {"ssh_file": {"reload": failing_on_host_2(sf)}}})
    original = files(sf)
    result, writes = cutover_under_load(sf, playbook)
    assert result.returncode == 3, result.stdout + result.stderr[-3000:]
    assert "host 2 of 2" in result.stdout and "rolled back" in result.stdout
    assert files(sf) == original and ports_through(sf) == [sf.ports["source"]] * 2
    assert server_id_through(app_endpoint(sf)()) == 1
    with sf.source.root() as s, sf.target.root() as t:
        assert s.variable("read_only") == 0 and t.variable("read_only") == 1
        assert writes.acked_order_ids and missing_orders(s, writes.acked_order_ids) == []
        assert replication.read_status(t).healthy



# -- haproxy over SSH --------------------------------------------------------------------------------


def via_ssh(sandbox, socket=None, backend: str = BACKEND) -> HaproxyRepointer:
    ssh = sandbox.ssh
    return HaproxyRepointer(HaproxyRepoint(
        socket=socket or sandbox.haproxy.admin_socket, backend=backend,
        via_ssh=Ssh(host="127.0.0.1", port=ssh.port, user=ssh.user, key_file=ssh.client_key,
                    known_hosts=ssh.known_hosts)))


def test_haproxy_via_ssh_sets_the_server_on_the_proxys_host(sandbox):
    repointer, local = via_ssh(sandbox), HaproxyAdmin(sandbox.haproxy.admin_socket)
    try:
        assert "answers at level admin" in repointer.check()
        said = repointer.point_to("127.0.0.1", sandbox.ports["target"])
        assert f"now sends new connections to 127.0.0.1:{sandbox.ports['target']}" in said
        assert local.server_state(BACKEND, SERVER).port == sandbox.ports["target"]
        assert repointer.points_to("127.0.0.1", sandbox.ports["target"])
    finally:
        local.set_server_addr(BACKEND, SERVER, "127.0.0.1", sandbox.ports["source"])
    assert repointer.current() == ("127.0.0.1", sandbox.ports["source"])


def test_haproxy_via_ssh_errors_read_as_the_local_sockets(sandbox, tmp_path):
    with pytest.raises(HaproxyUnreachable) as missing:
        via_ssh(sandbox, socket=tmp_path / "nope.sock").current()
    assert f"{tmp_path / 'nope.sock'} on " in missing.value.message and "does not exist" in missing.value.message
    with pytest.raises(HaproxyError, match="Can't find backend"):
        via_ssh(sandbox, backend="nope").current()


# -- migrate plan: each repoint's preconditions, read on the variants ------------------------------------


def repoint_check(sb, tmp_path, **changes) -> dict:
    playbook = fast_playbook(sb, tmp_path, estimates={"binlog_sample_s": 0.1}, **changes)
    result = run_migrate("plan", "-p", str(playbook), "--json")
    assert result.returncode in (0, 1), result.stdout + result.stderr[-3000:]
    return next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "cutover.repoint")


def test_plan_reads_the_route53_record_warns_on_a_long_ttl_and_fails_a_missing_one(r53, tmp_path):
    assert repoint_check(r53, tmp_path)["status"] == "pass"
    long_ttl = repoint_check(r53, tmp_path, cutover={"repoint": {"route53": {"ttl": 60}}})
    assert long_ttl["status"] == "warn" and "a TTL of 60 s is over 5 s" in long_ttl["evidence"]
    missing = repoint_check(r53, tmp_path, cutover={"repoint": {"route53": {"record": "nope.sandbox.internal."}}})
    assert missing["status"] == "fail" and "does not exist in zone" in missing["evidence"]


def test_plan_fails_ssh_file_when_a_host_is_unreachable_or_lacks_the_reload(sf, tmp_path):
    assert repoint_check(sf, tmp_path)["status"] == "pass"
    settings = load(sf.playbook_path).cutover.repoint.ssh_file
    hosts = [h.model_dump(mode="json") for h in settings.hosts]
    gone = repoint_check(sf, tmp_path, cutover={"repoint": {"ssh_file": {
        "hosts": [hosts[0], {**hosts[1], "port": procs.free_port()}]}}})
    assert gone["status"] == "fail" and "cannot be reached" in gone["evidence"]
    no_reload = repoint_check(sf, tmp_path, cutover={"repoint": {"ssh_file": {"reload": "no-such-reload-tool"}}})
    assert no_reload["status"] == "fail" and "no-such-reload-tool is not found" in no_reload["evidence"]
    no_check = repoint_check(sf, tmp_path, cutover={"repoint": {"ssh_file": {"check": "no-such-check {file}"}}})
    assert no_check["status"] == "fail" and "the check's program no-such-check is not found" in no_check["evidence"]


def test_plan_warns_when_an_ssh_command_on_an_application_host_is_slow(sf, tmp_path):
    """bash runs ~/.bashrc for every SSH command: a slow one is paid in the repoint, while writes are blocked."""
    ssh2 = app_hosts(sf)[1][0]
    bashrc = ssh2.base / ".bashrc"  # the sandbox host's HOME
    bashrc.write_text("sleep 0.2\n")
    try:
        slow = repoint_check(sf, tmp_path)
    finally:
        bashrc.unlink()
    assert slow["status"] == "warn", slow
    assert f"({ssh2.user}@127.0.0.1:{ssh2.port}), over 100 ms" in slow["evidence"] and "~/.bashrc" in slow["evidence"]


def test_plan_fails_haproxy_via_ssh_when_the_socket_is_not_on_the_proxys_host(sandbox, tmp_path):
    ssh = sandbox.ssh
    via = {"host": "127.0.0.1", "port": ssh.port, "user": ssh.user, "key_file": str(ssh.client_key),
           "known_hosts": str(ssh.known_hosts)}
    haproxy = {"socket": str(tmp_path / "nope.sock"), "backend": BACKEND, "server": SERVER, "via_ssh": via}
    check = repoint_check(sandbox, tmp_path, state_dir=str(tmp_path / "state"),
                          cutover={"repoint": {"method": "haproxy", "haproxy": haproxy}})
    assert check["status"] == "fail" and "nope.sock on " in check["evidence"]
