"""A bad playbook is refused with the file, line, key path and what was expected; secrets are read only
from where the playbook says, and a missing one is named."""

from __future__ import annotations

import json
import os
import textwrap
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from migrate import secrets
from migrate.errors import PlaybookError, SecretError
from migrate.playbook import Cutover, Repoint, load, parse
from tests.helpers import ROOT, run_migrate

VALID = textwrap.dedent("""\
    name: orders
    source:
      kind: rds
      rds_instance_id: orders-prod
      user: admin
      password_env: SOURCE_PASSWORD
    target:
      host: 10.0.1.20
      user: root
      password_file: /etc/migrate/target.pw
    replication: {user: repl, password_env: REPL_PASSWORD}
    cutover:
      app_users: [app_rw]
      repoint:
        method: command
        command: {run: "./repoint.sh {host} {port}"}
    """)


def problems(text: str) -> str:
    with pytest.raises(PlaybookError) as exc:
        parse(text, source="pb.yml")
    return str(exc.value)


def test_a_minimal_playbook_loads_with_defaults_and_is_immutable():
    pb = parse(VALID)
    assert pb.source.port == 3306 and pb.source.tls.mode == "required" and pb.seed.method == "dump"
    assert pb.cutover.write_block == "revoke_and_kill" and pb.cutover.reverse_replication is True
    with pytest.raises(ValidationError):
        pb.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize("example", sorted((ROOT / "playbooks").glob("*.yml")), ids=lambda p: p.name)
def test_every_example_playbook_loads(example: Path):
    assert load(example).name


def test_every_write_block_and_repoint_has_an_example_playbook():
    examples = [load(p) for p in sorted((ROOT / "playbooks").glob("*.yml"))]
    blocks = {pb.cutover.write_block for pb in examples}
    repoints = {pb.cutover.repoint.method for pb in examples}
    via_ssh = [pb for pb in examples if pb.cutover.repoint.haproxy and pb.cutover.repoint.haproxy.via_ssh]
    assert blocks == set(typing.get_args(Cutover.model_fields["write_block"].annotation))
    assert repoints == set(typing.get_args(Repoint.model_fields["method"].annotation))
    assert via_ssh, "an example of an HAProxy reached over SSH (cutover.repoint.haproxy.via_ssh)"


def test_an_unknown_key_is_an_error_naming_line_path_and_allowed_keys():
    text = VALID.replace("  user: root\n", "  user: root\n  hots: 10.0.1.21\n")
    message = problems(text)
    assert "pb.yml:10: target.hots: unknown key" in message
    assert "allowed here:" in message and "host" in message


def test_a_wrong_choice_names_the_choices_and_what_was_given():
    message = problems(VALID.replace("method: command", "method: carrier-pigeon"))
    assert "cutover.repoint.method" in message and "'haproxy'" in message and "carrier-pigeon" in message


def test_a_missing_required_key_is_named():
    message = problems(VALID.replace("replication: {user: repl, password_env: REPL_PASSWORD}\n", ""))
    assert "replication: required key is missing" in message


def test_a_port_out_of_range_is_refused_with_the_bound():
    message = problems(VALID.replace("  user: root\n", "  user: root\n  port: 70000\n"))
    assert "target.port" in message and "65535" in message


def test_an_inline_password_is_refused_without_echoing_it():
    message = problems(VALID.replace("  user: admin\n", "  user: admin\n  password: hunter2\n"))
    assert "inline passwords are not allowed" in message and "hunter2" not in message


def test_two_password_sources_for_one_account_are_refused():
    message = problems(VALID.replace("password_env: SOURCE_PASSWORD", "password_env: A\n  password_file: /x"))
    assert "source" in message and "not password_env and password_file" in message


def test_an_account_without_password_source_is_refused():
    message = problems(VALID.replace("  password_env: SOURCE_PASSWORD\n", ""))
    assert "a password source is required" in message


def test_rds_source_needs_an_instance_id():
    message = problems(VALID.replace("  rds_instance_id: orders-prod\n", ""))
    assert "kind 'rds' needs rds_instance_id" in message


def test_repoint_method_needs_its_section():
    message = problems(VALID.replace("method: command", "method: route53"))
    assert "method 'route53' needs a 'route53' section" in message


def test_a_key_given_twice_is_an_error():
    message = problems(VALID + "name: again\n")
    assert "name: key given twice" in message


def test_not_yaml_and_not_a_mapping_are_errors():
    assert "not valid YAML" in problems("name: [unclosed\n")
    assert "must be a mapping" in problems("- just\n- a list\n")


def test_cli_exits_2_naming_the_file_and_key_path(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(VALID.replace("max_lag_s", "x").replace("  app_users", "  max_lag: 1\n  app_users"))
    result = run_migrate("plan", "-p", str(bad))
    assert result.returncode == 2
    assert f"{bad}:13: cutover.max_lag: unknown key" in result.stdout


def test_cli_exits_2_for_a_missing_playbook(tmp_path):
    result = run_migrate("cutover", "-p", str(tmp_path / "nope.yml"), "--json")
    assert result.returncode == 2 and "no such playbook" in result.stdout


def test_verify_before_start_says_there_is_nothing_to_verify_yet_and_touches_no_server(tmp_path):
    playbook = tmp_path / "pb.yml"
    playbook.write_text(VALID + f"state_dir: {tmp_path / 'state'}\n")
    result = run_migrate("verify", "-p", str(playbook))
    assert result.returncode == 1 and "nothing to verify yet" in result.stdout and "migrate start -p" in result.stdout


def test_require_verify_is_off_unless_the_playbook_turns_it_on():
    assert parse(VALID).cutover.require_verify is False
    assert parse(VALID.replace("  app_users", "  require_verify: true\n  app_users")).cutover.require_verify is True


def test_help_lists_every_command_of_the_design():
    out = run_migrate("--help").stdout
    for command in ("plan", "start", "status", "verify", "rehearse", "cutover", "rollback", "report",
                    "sandbox", "demo"):
        assert f"    {command}" in out


# -- secrets -------------------------------------------------------------------------------------


def test_password_from_environment(monkeypatch):
    monkeypatch.setenv("SOURCE_PASSWORD", "from-env-1")
    assert secrets.resolve(parse(VALID).source, what="source.password").get_secret_value() == "from-env-1"


def test_a_missing_environment_variable_is_named(monkeypatch):
    monkeypatch.delenv("SOURCE_PASSWORD", raising=False)
    with pytest.raises(SecretError) as exc:
        secrets.resolve(parse(VALID).source, what="source.password")
    assert "SOURCE_PASSWORD is not set" in str(exc.value) and exc.value.exit_code == 2


def test_password_from_file_strips_the_newline_and_a_missing_file_is_named(tmp_path):
    pw = tmp_path / "target.pw"
    text = VALID.replace("/etc/migrate/target.pw", str(pw))
    with pytest.raises(SecretError) as exc:
        secrets.resolve(parse(text).target, what="target.password")
    assert f"password file {pw} does not exist" in str(exc.value)
    pw.write_text("from-file-1\n")
    os.chmod(pw, 0o600)
    assert secrets.resolve(parse(text).target, what="target.password").get_secret_value() == "from-file-1"


def test_a_resolved_password_is_masked_when_printed(monkeypatch):
    monkeypatch.setenv("SOURCE_PASSWORD", "masked-pw-1")
    value = secrets.resolve(parse(VALID).source, what="source.password")
    assert "masked-pw-1" not in repr(value) and "masked-pw-1" not in str(value)


def test_a_rehearsal_section_has_its_own_server_endpoint_and_seed_and_refuses_what_it_does_not_know():
    pb = parse(VALID + textwrap.dedent("""\
        rehearsal:
          host: 10.0.1.30
          user: root
          password_file: /etc/migrate/rehearsal.pw
          repoint: {method: command, command: {run: "./drill-repoint.sh {host} {port}"}}
        """))
    r = pb.rehearsal
    assert (r.seed, r.drill_user, r.teardown, r.datadir) == ("clone_target", "migrate_drill", False,
                                                              Path("/var/lib/mysql"))
    assert parse(VALID).rehearsal is None
    said = problems(VALID + "rehearsal: {host: h, user: u, password_env: P, seed: snapshot, "
                            "repoint: {method: command, command: {run: x}}, drill_user: 'a b'}\n")
    assert "rehearsal.seed" in said and "rehearsal.drill_user" in said
    assert "rehearsal.repoint" in problems(VALID + "rehearsal: {host: h, user: u, password_env: P}\n")


def test_the_dry_run_shows_the_write_block_each_server_gets(tmp_path):
    """The playbook's method on the RDS source; a parameter group belongs to RDS only, so the rollback blocks the
    self-managed target with read_only and makes the source writable through its parameter group."""
    pb = tmp_path / "pb.yml"
    pb.write_text(VALID.replace("app_users: [app_rw]", "app_users: [app_rw]\n  write_block: parameter_group")
                  .replace("rds_instance_id: orders-prod", "rds_instance_id: orders-prod\n  host: 10.0.1.10")
                  + f"state_dir: {tmp_path / 'state'}\n")
    said = {}
    for command in ("cutover", "rollback"):
        result = run_migrate(command, "-p", str(pb), "--dry-run", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        said[command] = {s["step"]: s["does"] for s in json.loads(result.stdout)["steps"]}
    assert "set read_only=1 in RDS instance" in said["cutover"]["block_writes"]
    assert "read_only OFF" in said["cutover"]["open_writes"] and "closed to the application" in said["cutover"]["promote"]
    assert "SET GLOBAL read_only = ON" in said["rollback"]["block_writes"]
    assert "read_only back in its parameter group" in said["rollback"]["open_writes"]
