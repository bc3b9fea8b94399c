"""The sandbox's RDS control plane: read_only set in the instance's parameter group (moto, through boto3)
reaches the real source server after the applier's delay, and leaves it again on reset; the sandbox's moto
resets parameters and refuses to change a default group, as AWS does. Each test leaves the shared source
writable and the group as it found it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from migrate.adapters import aws as aws_adapter
from migrate.adapters.db import DatabaseError
from migrate.sandbox import rds_control, sample_data
from migrate.sandbox import sandbox as sandbox_mod
from migrate.sandbox.aws import PARAMETER_GROUP
from tests.helpers import endpoint_as, open_session, wait_for

READ_ONLY_ERROR = 1290  # "The MariaDB server is running with the --read-only option"


def _set(rds, value: str) -> None:
    rds.modify_db_parameter_group(DBParameterGroupName=PARAMETER_GROUP, Parameters=[
        {"ParameterName": "read_only", "ParameterValue": value, "ApplyMethod": "immediate"}])


def _reset(rds) -> None:
    rds.reset_db_parameter_group(DBParameterGroupName=PARAMETER_GROUP, Parameters=[
        {"ParameterName": "read_only", "ApplyMethod": "immediate"}])


def _source_read_only(sandbox) -> int:
    with sandbox.source.root() as root:
        return root.value("SELECT @@global.read_only")


def _seconds_until(predicate, timeout: float) -> float:
    began = time.monotonic()
    wait_for(predicate, timeout, "the source's read_only")
    return time.monotonic() - began


@pytest.fixture(scope="module")
def sandbox() -> Iterator[sandbox_mod.Sandbox]:
    """A sandbox of this module's own whose write block is parameter_group: only such a sandbox runs the applier."""
    with sandbox_mod.temporary(500, options=sandbox_mod.Options(write_block="parameter_group")) as sb:
        yield sb


@pytest.fixture
def rds(sandbox) -> Iterator:
    """boto3 against the sandbox's moto; afterwards read_only leaves the group, the applier's delay is what it
    was, and the source is writable (the tests share this sandbox)."""
    applier = sandbox.rds_applier
    before = applier.delay()
    client = aws_adapter.client(sandbox.aws.settings, "rds")
    yield client
    if not sandbox.aws.running():  # a test stopped moto: start and provision it again, as `sandbox up` does
        sandbox_mod.up(sandbox.dir)
    _reset(client)
    applier.set_delay(0)
    wait_for(lambda: _source_read_only(sandbox) == 0, 5, "the source to be writable again")
    applier.set_delay(before)


def test_read_only_in_the_parameter_group_blocks_the_applications_writes_on_the_source(sandbox, rds):
    sandbox.rds_applier.set_delay(0)
    _set(rds, "1")
    took = _seconds_until(lambda: _source_read_only(sandbox) == 1, 0 + 1)
    app = endpoint_as(sandbox.ports["source"], sample_data.APP_USER, sandbox.secret("app"))
    with open_session(app) as s, pytest.raises(DatabaseError) as exc:
        s.run("UPDATE shop.orders SET status = status WHERE id = 1")
    assert exc.value.code == READ_ONLY_ERROR
    event = sandbox.rds_applier.state()["events"][-1]
    assert (event["parameter"], event["value"], event["group"]) == ("read_only", "1", PARAMETER_GROUP)
    assert took < 1


def test_reset_gives_the_source_the_engine_default_back(sandbox, rds):
    sandbox.rds_applier.set_delay(0)
    _set(rds, "1")
    _seconds_until(lambda: _source_read_only(sandbox) == 1, 1)
    _reset(rds)
    _seconds_until(lambda: _source_read_only(sandbox) == 0, 1)
    assert "read_only" not in {p["ParameterName"] for p in
                               rds.describe_db_parameters(DBParameterGroupName=PARAMETER_GROUP)["Parameters"]}


def test_a_delay_of_one_second_holds_the_change_back(sandbox, rds):
    sandbox.rds_applier.set_delay(1)
    time.sleep(0.1)  # the applier reads the delay at its next poll
    _set(rds, "1")
    time.sleep(0.5)
    assert _source_read_only(sandbox) == 0
    took = 0.5 + _seconds_until(lambda: _source_read_only(sandbox) == 1, 2)
    assert 1.0 <= took < 2.0
    assert sandbox.rds_applier.state()["events"][-1]["after_s"] >= 1.0


def test_never_sees_the_change_and_never_applies_it(sandbox, rds):
    sandbox.rds_applier.set_delay(None)
    time.sleep(0.1)
    _set(rds, "1")
    wait_for(lambda: sandbox.rds_applier.state().get("pending", {}).get("read_only", {}).get("value") == "1", 3,
             "the applier to see the change")
    time.sleep(1.5)
    assert _source_read_only(sandbox) == 0


def test_the_applier_outlives_a_moto_restart_and_applies_what_the_new_moto_says(sandbox, rds):
    applier = sandbox.rds_applier
    applier.set_delay(0)
    sandbox.aws.stop()
    wait_for(lambda: "cannot read the parameter group from moto" in (applier.state().get("error") or ""), 5,
             "the applier to say that moto is gone")
    assert applier.running()
    sandbox_mod.up(sandbox.dir)  # the aws step starts and provisions moto again; the applier's step is done
    wait_for(lambda: applier.state().get("error") is None, 5, "the applier to read moto again")
    client = aws_adapter.client(sandbox.aws.settings, "rds")
    _set(client, "1")
    _seconds_until(lambda: _source_read_only(sandbox) == 1, 1)
    assert "recovered: reading the parameter group from moto works again" in applier.log_file.read_text()


def test_the_sandboxs_moto_resets_parameters_and_refuses_default_groups_as_aws_does(sandbox):
    # another region of the same moto: nothing the other tests see
    settings = sandbox.aws.settings.model_copy(update={"region": "eu-west-1"})
    rds = aws_adapter.client(settings, "rds")
    rds.create_db_parameter_group(DBParameterGroupName="pg-reset", DBParameterGroupFamily="mariadb10.11",
                                  Description="reset test")
    rds.modify_db_parameter_group(DBParameterGroupName="pg-reset", Parameters=[
        {"ParameterName": n, "ParameterValue": "1", "ApplyMethod": "immediate"} for n in ("read_only", "max_connections")])
    listed = rds.describe_db_parameters(DBParameterGroupName="pg-reset", Source="user")["Parameters"]
    assert {(p["ParameterName"], p["Source"]) for p in listed} == {("read_only", "user"), ("max_connections", "user")}
    assert rds.describe_db_parameters(DBParameterGroupName="pg-reset", Source="engine-default")["Parameters"] == []
    rds.reset_db_parameter_group(DBParameterGroupName="pg-reset", ResetAllParameters=True)
    assert rds.describe_db_parameters(DBParameterGroupName="pg-reset")["Parameters"] == []
    rds.create_db_instance(DBInstanceIdentifier="on-default", Engine="mariadb", EngineVersion="10.11.6",
                           DBInstanceClass="db.t3.micro", AllocatedStorage=20, MasterUsername="admin",
                           MasterUserPassword="not-a-secret-1")
    default = rds.describe_db_instances(DBInstanceIdentifier="on-default")["DBInstances"][0]["DBParameterGroups"][0]
    assert default["DBParameterGroupName"].startswith("default.")
    with pytest.raises(ClientError) as exc:
        rds.modify_db_parameter_group(DBParameterGroupName=default["DBParameterGroupName"], Parameters=[
            {"ParameterName": "read_only", "ParameterValue": "1", "ApplyMethod": "immediate"}])
    assert exc.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "Cannot modify a default parameter group" in str(exc.value)


def test_delay_is_seconds_or_never():
    assert rds_control.parse_delay("never") is None and rds_control.parse_delay("1.5") == 1.5
    with pytest.raises(Exception, match="neither a number"):
        rds_control.parse_delay("soon")
