"""What a command needs from its inputs before it touches anything: every password the playbook names can be
read, the state directory can be written, the SSH files exist, and (for `start`) both servers take a login.
A problem here is bad input (exit 2) or a server saying no (exit 1), reported before any server changes."""

from __future__ import annotations

import os
from pathlib import Path

from migrate.adapters.db import DatabaseError, connect
from migrate.capabilities.migration import Migration
from migrate.errors import BadInput, Refused
from migrate.runner.store import ensure_private_dir


def state_dir_writable(directory: Path) -> None:
    probe = directory / f".writable.{os.getpid()}"
    try:
        ensure_private_dir(directory)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise BadInput(f"the state directory {directory} cannot be written: {exc.strerror or exc}",
                       hint="set state_dir in the playbook to a directory this user can create and write") from None


def secrets_readable(m: Migration) -> None:
    """Resolves each password once (they are cached): a missing or unreadable one is said now, by name."""
    m.source_password, m.target_password, m.replication_password  # noqa: B018 - resolving is the check
    if m.pb.probe.enabled and m.pb.probe.has_password:
        from migrate import secrets

        secrets.resolve(m.pb.probe, what="probe.password", aws=m.pb.aws)


def ssh_files_exist(m: Migration, sides: tuple[str, ...] = ("source", "target")) -> None:
    for side in sides:
        ssh = getattr(m.pb, side).ssh
        if ssh is None:
            continue
        for name in ("key_file", "known_hosts"):
            path = getattr(ssh, name)
            if not path.is_file():
                raise BadInput(f"{side}.ssh.{name}: {path} does not exist or is not a file",
                               hint=f"point {side}.ssh.{name} at the file (ssh-keyscan -p PORT HOST >> known_hosts "
                                    "makes a known_hosts)")


def servers_accept_login(m: Migration) -> None:
    for name, endpoint in (("source", m.source_endpoint), ("target", m.target_endpoint)):
        try:
            connect(endpoint(), attempts=2, connect_timeout=10).close()
        except DatabaseError as exc:
            raise Refused(f"{name}: {exc.message}; nothing was changed", hint=exc.hint) from None


def check(m: Migration, command: str) -> None:
    state_dir_writable(m.pb.run_dir)
    if command in ("plan", "start", "cutover", "rollback", "rehearse"):
        secrets_readable(m)
    if command == "rehearse":
        m.rehearsal_password  # noqa: B018 - resolving is the check (m.rehearsal refuses a missing section)
    if command in ("start", "rehearse"):
        ssh_files_exist(m, ("source", "target", "rehearsal") if command == "rehearse" else ("source", "target"))
        servers_accept_login(m)
