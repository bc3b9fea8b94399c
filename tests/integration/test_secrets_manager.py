"""password_secret reads Secrets Manager through boto3 (a moto server on loopback stands in for AWS)."""

from __future__ import annotations

import json
import uuid

import pytest

from migrate import secrets
from migrate.adapters import aws as aws_adapter
from migrate.errors import SecretError
from migrate.playbook import Source


def _source(secret_id: str) -> Source:
    return Source(kind="rds", rds_instance_id="shop-prod", user="admin", password_secret=secret_id)


def test_a_plain_string_secret_is_the_password(sandbox):
    name = f"plain-{uuid.uuid4().hex[:8]}"
    aws_adapter.client(sandbox.aws.settings, "secretsmanager").create_secret(Name=name, SecretString="sm-pw-1")
    value = secrets.resolve(_source(name), what="source.password", aws=sandbox.aws.settings)
    assert value.get_secret_value() == "sm-pw-1"


def test_a_json_secret_gives_its_password_field_as_rds_managed_secrets_do(sandbox):
    name = f"rds-{uuid.uuid4().hex[:8]}"
    aws_adapter.client(sandbox.aws.settings, "secretsmanager").create_secret(
        Name=name, SecretString=json.dumps({"username": "admin", "password": "sm-pw-2"}))
    assert secrets.resolve(_source(name), what="x", aws=sandbox.aws.settings).get_secret_value() == "sm-pw-2"


def test_a_missing_secret_is_named(sandbox):
    with pytest.raises(SecretError) as exc:
        secrets.resolve(_source("no/such/secret"), what="source.password", aws=sandbox.aws.settings)
    assert "no/such/secret" in str(exc.value) and "ResourceNotFoundException" in str(exc.value)
