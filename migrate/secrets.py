"""Reads the passwords the playbook names. A resolved password is a SecretStr and is registered with
the log redactor, so it cannot reach a log line, the journal or a report by accident."""

from __future__ import annotations

import json
import os
import stat

from pydantic import SecretStr

from migrate import log
from migrate.errors import SecretError
from migrate.playbook import Aws, SecretRef


def resolve(ref: SecretRef, *, what: str, aws: Aws | None = None) -> SecretStr:
    """The password of `what` (for example "source.password"), from wherever `ref` says it lives."""
    if ref.password_env:
        value = os.environ.get(ref.password_env)
        if value is None:
            raise SecretError(
                f"{what}: environment variable {ref.password_env} is not set",
                hint=f"export {ref.password_env}=... in the shell that runs migrate, or use password_file",
            )
    elif ref.password_file:
        value = _read_file(ref, what)
    elif ref.password_secret:
        value = _read_secrets_manager(ref.password_secret, what, aws)
    else:
        raise SecretError(f"{what}: no password source given (password_env, password_file or password_secret)")
    if value == "":
        raise SecretError(f"{what}: the password from {_origin(ref)} is empty",
                          hint="write the password there (an account without a password is not supported)")
    log.register_secret(value)
    return SecretStr(value)


def _origin(ref: SecretRef) -> str:
    if ref.password_env:
        return f"environment variable {ref.password_env}"
    if ref.password_file:
        return f"file {ref.password_file}"
    return f"secret {ref.password_secret}"


def _read_file(ref: SecretRef, what: str) -> str:
    """The file's text minus its line end, CRLF included, and minus a UTF-8 byte-order mark (editors on Windows
    write both; neither is ever part of a password)."""
    path = ref.password_file
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SecretError(f"{what}: password file {path} does not exist",
                          hint=f"write the password to {path} and chmod 600 it") from None
    except IsADirectoryError:
        raise SecretError(f"{what}: password file {path} is a directory",
                          hint="point password_file at the file that holds the password") from None
    except OSError as exc:
        raise SecretError(f"{what}: password file {path} cannot be read: {exc.strerror or exc}",
                          hint=f"make {path} readable by this user (chmod 600, owned by it)") from None
    try:
        value = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SecretError(f"{what}: password file {path} is not UTF-8 text",
                          hint="save it as UTF-8 (iconv -f LATIN1 -t UTF-8), or set the password another way") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.get().warning("password file readable by others", file=str(path), fix=f"chmod 600 {path}")
    return value.rstrip("\r\n")


def _read_secrets_manager(secret_id: str, what: str, aws: Aws | None) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from migrate.adapters import aws as aws_adapter

    try:
        answer = aws_adapter.client(aws or Aws(), "secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise SecretError(f"{what}: Secrets Manager secret {secret_id} could not be read ({code})",
                          hint="check the secret id, the region and that this role may call GetSecretValue") from None
    except BotoCoreError as exc:
        raise SecretError(f"{what}: Secrets Manager is unreachable for secret {secret_id}: {exc}") from None
    value = answer.get("SecretString")
    if value is None:
        raise SecretError(f"{what}: secret {secret_id} holds binary data, expected a string")
    # RDS-managed and console-made secrets are JSON: {"username": ..., "password": ...}
    if value.lstrip().startswith("{"):
        try:
            doc = json.loads(value)
        except json.JSONDecodeError:
            return value
        if isinstance(doc, dict) and "password" in doc:
            return str(doc["password"])
        raise SecretError(f"{what}: secret {secret_id} is JSON without a 'password' field")
    return value
