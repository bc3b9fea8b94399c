"""`migrate heartbeat`: writes the heartbeat row until stopped (run it under systemd or tmux, beside the state
directory the other commands use: a switch pauses it through that directory's lock).

It writes on the server the application writes on, as the migration's phase record says (the source, or the
target once cut over), and pauses while a switch runs or one died in its middle: nothing may reach an old primary
after its final position was taken."""

from __future__ import annotations

from collections.abc import Callable

from migrate.adapters.db import Endpoint
from migrate.capabilities import heartbeat, phase
from migrate.capabilities.migration import Migration
from migrate.runner.store import ensure_private_dir

SETTLED = ("new", "seeding", "replicating", "cut_over", "rolled_back")


def where_to_write(m: Migration) -> Callable[[], Endpoint | str]:
    """The endpoint the heartbeat goes to now, or why it must not be written now."""
    def now() -> Endpoint | str:
        p = phase.read(m.store.load_state())
        if p.phase not in SETTLED:
            return f"the migration is {p.phase.replace('_', ' ')} (a switch runs, or died in its middle)"
        if p.writes_blocked:
            return "the application's writes are blocked"
        return m.source_endpoint() if p.app_on == "source" else m.target_endpoint()
    return now


def writer(m: Migration, name: str, say: Callable[[str], None] | None = None) -> heartbeat.Writer:
    ensure_private_dir(m.pb.run_dir)  # the pause lock lives there
    return heartbeat.Writer(where_to_write(m), m.pb.heartbeat.interval_s, name, run_dir=m.pb.run_dir,
                            on_change=say)
