"""`sandbox` never deletes or takes over a directory that is not its own, and says why."""

from __future__ import annotations

from tests.helpers import run_migrate


def test_down_refuses_to_delete_a_directory_that_is_not_a_sandbox(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep me")
    result = run_migrate("sandbox", "down", "--dir", str(precious))
    assert result.returncode == 2 and "not a sandbox" in result.stdout
    assert (precious / "data.txt").read_text() == "keep me"


def test_up_refuses_a_non_empty_directory_that_is_not_a_sandbox(tmp_path):
    (tmp_path / "something.txt").write_text("x")
    result = run_migrate("sandbox", "up", "--dir", str(tmp_path))
    assert result.returncode == 2 and "is not a sandbox; refusing to use it" in result.stdout


def test_up_refuses_a_directory_too_long_for_unix_sockets(tmp_path):
    result = run_migrate("sandbox", "up", "--dir", str(tmp_path / ("x" * 90)))
    assert result.returncode == 2 and "too long for the sandbox's unix sockets" in result.stdout


def test_status_of_a_missing_sandbox_says_how_to_start_one(tmp_path):
    result = run_migrate("sandbox", "status", "--dir", str(tmp_path / "none"), "--json")
    assert result.returncode == 2 and "migrate sandbox up --dir" in result.stdout


def test_down_of_a_directory_already_gone_is_fine(tmp_path):
    assert run_migrate("sandbox", "down", "--dir", str(tmp_path / "gone")).returncode == 0
