"""boto3 clients built from the playbook's `aws` section (region, profile, endpoint, credentials file).

boto3 is imported when a client is first made, not with this module: it costs ~0.1 s, and most commands on a
self-managed source never call AWS."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from migrate.playbook import Aws

if TYPE_CHECKING:
    import boto3


def session(aws: Aws) -> boto3.Session:
    import boto3
    import botocore.session

    core = botocore.session.Session(profile=aws.profile)
    if aws.credentials_file:
        core.set_config_variable("credentials_file", str(aws.credentials_file))
    return boto3.Session(botocore_session=core, region_name=aws.region)


def client(aws: Aws, service: str) -> Any:
    from botocore.config import Config

    retries = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    return session(aws).client(service, endpoint_url=aws.endpoint_url, config=retries)
