"""The roles of a switch: the cutover, the rollback and the rehearsal are one choreography with other roles.

    switch = (old primary, new primary, how the new one replicates from the old, how the old one will
              replicate from the new, the application endpoint, the repointer, the probe's gate)

The steps receive a `Switch` and never read `source`/`target` of the playbook themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pydantic import SecretStr

from migrate.adapters.db import DatabaseError, Endpoint, Session, connect
from migrate.capabilities.repoint.base import Repointer

if TYPE_CHECKING:
    from migrate.capabilities.write_block import WriteBlocker

# A switch step that talks to a server may take cutover.timeout_s (its own wait) and this much more.
STEP_SLACK_S = 10.0


class Server:
    """One server in a role: how migrate connects to it, where the application would reach it, and one
    long-lived session for the time-critical steps (a connect costs milliseconds the application waits for).

    `wait_s`: how long a connect's handshake or a statement may wait for the server (by default the driver's
    60 s read timeout). A switch bounds it by its step timeout: on a silent link the statement fails, and the
    step with it, instead of holding the application's blocked writes for a minute."""

    def __init__(self, name: str, endpoint: Callable[[], Endpoint], address: tuple[str, int], *, rds: bool,
                 wait_s: float | None = None):
        self.name = name  # "source" | "target": the playbook's name, for the phase record and messages
        self._endpoint = endpoint
        self.address = address  # host, port as the application (and the repointer) reach it
        self.rds = rds
        self.wait_s = wait_s
        self._shared: Session | None = None
        self._cancelled = False

    def endpoint(self) -> Endpoint:
        return self._endpoint()

    def session(self, **kw) -> Session:
        if self.wait_s is not None:
            kw = {"read_timeout": self.wait_s, "bound_handshake": True, **kw}
        return connect(self.endpoint(), **kw)

    def shared(self) -> Session:
        """The long-lived session, replaced when it died. Closed by `close()`; none after `cancel()`."""
        if self._shared is not None and not self._cancelled:
            try:
                self._shared.conn.ping(reconnect=False)
                return self._shared
            except Exception:  # noqa: BLE001 - a dead session is replaced
                self._shared.close()
        self._refuse_if_cancelled()
        self._shared = self.session()
        self._refuse_if_cancelled()  # cancelled while it connected
        return self._shared

    def _refuse_if_cancelled(self) -> None:
        if self._cancelled:
            self.close()
            raise DatabaseError(f"{self.name}: the step was cancelled; no new session is opened for it")

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def cancel(self) -> None:
        """Close, and open no shared session again: the thread of a step cancelled at its timeout must fail at
        its next statement, not reconnect and go on changing the server behind the rollback."""
        self._cancelled = True
        self.close()

    def __str__(self) -> str:
        return f"{self.name} ({self.address[0]}:{self.address[1]})"


@dataclass(frozen=True)
class Link:
    """How a replica reaches its source: the address as the replica sees it, the account, TLS, the mode."""

    host: str
    port: int
    user: str
    password_of: Callable[[], SecretStr] = field(repr=False)  # resolved when used: a dry run needs no secret
    tls: bool
    ca_file: str | None
    mode: str  # auto | gtid | file

    @property
    def password(self) -> SecretStr:
        return self.password_of()

    def describe(self) -> str:
        return f"{self.user}@{self.host}:{self.port}" + (" over TLS" if self.tls else "")


class AppEndpoint:
    """How the application reaches its database, as the probe and the post-check write: the probe's fixed
    endpoint, or, when none is set, wherever the switch has pointed the application so far."""

    def __init__(self, user: str, password_of: Callable[[], SecretStr], *, fixed: tuple[str, int] | None,
                 points_at: Server):
        self.user, self.password_of, self.fixed = user, password_of, fixed
        self.points_at = points_at

    def follow(self, server: Server) -> None:
        self.points_at = server

    def __call__(self) -> Endpoint:
        host, port = self.fixed or self.points_at.address
        return Endpoint(host, port, self.user, self.password_of(), label="application endpoint")

    def describe(self) -> str:
        if self.fixed:
            return f"{self.fixed[0]}:{self.fixed[1]} (fixed: probe.host)"
        return f"{self.points_at.address[0]}:{self.points_at.address[1]} (follows the repoint)"


@dataclass
class Switch:
    """One switch of the application from `old` to `new`."""

    workflow: str  # cutover | rollback | rehearse
    old: Server
    new: Server
    new_from_old: Link  # how `new` replicates from `old` until the switch
    old_from_new: Link  # how `old` replicates from `new` after it (reverse replication)
    app_users: list[str]
    app: AppEndpoint
    repointer: Repointer
    blocker: WriteBlocker  # blocks the application's writes on `old`
    promoter: WriteBlocker  # the same method as `new` allows it: makes `new` writable at promotion
    max_lag_s: float
    stable_for_s: float
    timeout_s: float
    follow_after: bool  # make `old` a replica of `new` once the application is on `new`
    events: list[str] = field(default_factory=list)  # schema.event enabled on the primary, kept off on replicas
    probe_gate: Callable[[float], str | None] | None = None  # None: acknowledging throughout; else why not
    before_hook: Callable[[], None] | None = None
    heartbeat_s: float | None = None  # the gates write the heartbeat on `old` at this interval (None: they do not)
    verify_gate: Callable[[], None] | None = None  # refuses unless a clean verify allows the switch
    # heartbeat.event: the source's heartbeat event is stopped on `old` before the block (cutover), started on
    # `new` at the end (rollback); None: the switch leaves it, and its gates refuse if it runs on `old`
    heartbeat_event: str | None = None  # stop | start

    @property
    def drill(self) -> bool:
        """A rehearsal: production's phase record (where the application writes) is never touched."""
        return self.workflow == "rehearse"

    def close(self) -> None:
        self.old.close()
        self.new.close()

    def cancel(self) -> None:
        """What a step cancelled at its timeout calls: its sessions closed, no new one opened for it."""
        self.old.cancel()
        self.new.cancel()
