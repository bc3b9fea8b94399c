"""One place decides "not now" for `migrate verify`: the replica's side of a chunk is read only once the replica
has applied everything the primary's side saw, and verify pauses while the replica is more than `max_lag_s`
behind (its own reads must not be what makes it lag). A replica that stopped applying stops verify with the
server's error: nothing can be compared on it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from migrate import log
from migrate.adapters.db import Session
from migrate.adapters.dialect import BinlogPosition
from migrate.capabilities import replication
from migrate.capabilities.replication import ReplicationError

WAIT_SLICE_S = 1.0


class Throttle:
    def __init__(self, primary: Session, replica: Session, *, max_lag_s: float, give_up_s: float = 1800.0,
                 cancelled: threading.Event | None = None, say: Callable[[str], None] | None = None):
        self.primary, self.replica = primary, replica
        self.max_lag_s, self.give_up_s = max_lag_s, give_up_s
        self.cancelled = cancelled or threading.Event()
        self.say = say or (lambda text: None)
        self.paused_s = 0.0  # how long verify waited for the replica beyond its own reads

    def applied(self, position: BinlogPosition) -> float:
        """Wait until the replica has applied `position`; the seconds it took. Uses the replica's session only."""
        started = time.monotonic()
        while True:
            outcome = replication.wait_applied(self.replica, position, WAIT_SLICE_S)
            waited = time.monotonic() - started
            if outcome == "reached":
                return waited
            status = replication.read_status(self.replica)
            if outcome == "not_replicating" or not status.healthy:
                raise ReplicationError(
                    f"the replica stopped applying the primary's changes (IO {status.io_state}, SQL "
                    f"{'running' if status.sql_running else 'stopped'}; {status.last_error or 'no error reported'}): "
                    "verify compares a replica that follows its primary", hint=replication.hint_for(status))
            self._check(waited)
            self.say(f"throttled: the replica is more than {WAIT_SLICE_S:g} s behind; waiting for it to apply "
                     "the chunk's position")

    def after_chunk(self, waited_s: float) -> None:
        """After a chunk whose replica side waited `waited_s`: pause while the replica stays more than
        `max_lag_s` behind a freshly sampled position. Uses both sessions (call it between chunks)."""
        if waited_s <= self.max_lag_s:
            return
        started = time.monotonic()
        while replication.true_lag_s(self.primary, self.replica, self.max_lag_s) is None:
            self._check(time.monotonic() - started)
            self.say(f"throttled: the replica is more than {self.max_lag_s:g} s behind; paused until it catches up")
            time.sleep(0.5)
        self.paused_s += time.monotonic() - started
        log.get().info("replica caught up; verify goes on", paused_s=round(time.monotonic() - started, 1))

    def _check(self, waited: float) -> None:
        if self.cancelled.is_set():
            raise ReplicationError("verify was cancelled while it waited for the replica")
        if waited > self.give_up_s:
            raise ReplicationError(f"the replica stayed behind for {waited:.0f} s: verify paused for that long",
                                   hint="rerun `migrate verify` once `migrate status` shows it caught up: it goes "
                                        "on from the last chunk done")
