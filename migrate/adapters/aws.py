"""boto3 clients built from the playbook's `aws` section (region, profile, endpoint, credentials file)."""

from __future__ import annotations

from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from migrate.playbook import Aws

_RETRIES = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def session(aws: Aws) -> boto3.Session:
    core = botocore.session.Session(profile=aws.profile)
    if aws.credentials_file:
        core.set_config_variable("credentials_file", str(aws.credentials_file))
    return boto3.Session(botocore_session=core, region_name=aws.region)


def client(aws: Aws, service: str) -> Any:
    return session(aws).client(service, endpoint_url=aws.endpoint_url, config=_RETRIES)
