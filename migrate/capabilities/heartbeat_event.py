"""The heartbeat written by the source itself: an event in the tool's schema, for a source whose event scheduler
is on (`heartbeat.event: true`), so that nothing has to run beside the migration for its lag to be read.

An event fires at most once a second, so it writes the row `round(1 / interval_s)` times per run, a SLEEP of the
interval apart (one row per run for intervals of a second or more): the same row, server id and interval as
`migrate heartbeat` writes, as literals, and the writer `event _migrate.heartbeat_event`.

It must never write on an old primary after its final position was taken. The cutover stops it before its
block (`stop`: DISABLE, then wait until no run of it is still in its body, SLEEP included) and enables it again
only when it undoes itself; the rollback enables it once the source is the primary again. CREATE/ALTER EVENT
reach the target through replication, where the server itself keeps the event SLAVESIDE_DISABLED; migrate never
enables it there (a promotion enables the application's events only: `events.enabled_names`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from migrate.adapters.db import Session, quote_string
from migrate.capabilities import heartbeat
from migrate.capabilities.inspector import TOOL_SCHEMA
from migrate.errors import MigrateError, Refused

NAME = "heartbeat_event"
FULL_NAME = f"{TOOL_SCHEMA}.{NAME}"
WRITER = f"event {FULL_NAME}"
STOP_WAIT_S = 10.0  # a run of the body lasts under a second; one still running after this is stuck


def cadence(interval_s: float) -> tuple[int, int, float]:
    """(schedule every N s, writes per run, seconds between them) closest to `interval_s`."""
    if interval_s >= 1:
        return round(interval_s), 1, float(round(interval_s))
    writes = max(1, round(1 / interval_s))
    return 1, writes, 1 / writes


def body(server_id: int, interval_s: float) -> str:
    """The event's body: `migrate heartbeat`'s own statement with literals, `writes` times, a SLEEP apart."""
    _, writes, apart = cadence(interval_s)
    write = heartbeat.WRITE % (int(server_id), round(apart * 1000), quote_string(WRITER))
    return "BEGIN\n  " + f";\n  DO SLEEP({apart:.6f});\n  ".join([write] * writes) + ";\nEND"


def read(s: Session) -> dict | None:
    """The event as the server has it (status ENABLED / DISABLED / SLAVESIDE_DISABLED), or None."""
    return s.one("SELECT status, definer, event_definition AS body, interval_value AS every FROM "
                 "information_schema.events WHERE event_schema = %s AND event_name = %s", (TOOL_SCHEMA, NAME))


def scheduler_on(s: Session) -> bool:
    return str(s.value("SELECT @@global.event_scheduler")).upper() == "ON"


def install(s: Session, interval_s: float) -> str:
    """Make the event exist, enabled, with this interval; refused when the server's event scheduler is off."""
    if not scheduler_on(s):
        raise Refused("heartbeat.event is on but the source's event scheduler is off: the event would never run",
                      hint="RDS: set event_scheduler = ON in the DB parameter group (it applies at once); "
                           "self-managed: SET GLOBAL event_scheduler = ON (and in my.cnf); or set heartbeat.event: "
                           "false and run `migrate heartbeat -p PLAYBOOK`")
    found, wanted, every = read(s), body(int(s.value("SELECT @@server_id")), interval_s), cadence(interval_s)[0]
    if _same(found, wanted, every):
        if found["status"] == "ENABLED":
            return f"{FULL_NAME} writes the heartbeat (unchanged)"
        set_enabled(s, True)
        return f"{FULL_NAME} enabled again: it writes the heartbeat"
    heartbeat.ensure_table(s)
    s.run(f"DROP EVENT IF EXISTS {FULL_NAME}")
    s.run(f"CREATE EVENT {FULL_NAME} ON SCHEDULE EVERY {every} SECOND ON COMPLETION PRESERVE ENABLE "
          f"COMMENT 'the heartbeat of migrate (heartbeat.event): see migrate status' DO {wanted}")
    _, writes, apart = cadence(interval_s)
    return (f"{FULL_NAME} {'replaced' if found else 'created'}: it writes the heartbeat every {apart:g} s "
            f"({writes} per run, every {every} s)")


def _same(found: dict | None, wanted: str, every: int) -> bool:
    return bool(found) and found["body"].strip() == wanted and int(found["every"]) == every


def installed(s: Session, interval_s: float) -> bool:
    """The event is there, enabled, with this interval, and the scheduler runs it."""
    found = read(s)
    return (_same(found, body(int(s.value("SELECT @@server_id")), interval_s), cadence(interval_s)[0])
            and found["status"] == "ENABLED" and scheduler_on(s))


def drop(s: Session) -> str | None:
    if read(s) is None:
        return None
    stop(s)
    s.run(f"DROP EVENT IF EXISTS {FULL_NAME}")
    return f"{FULL_NAME} dropped (heartbeat.event is off)"


def set_enabled(s: Session, enable: bool) -> None:
    s.run(f"ALTER EVENT {FULL_NAME} {'ENABLE' if enable else 'DISABLE'}")


def _running(s: Session, definer: str) -> list[int]:
    """Threads running the event's body now: the scheduler runs it as its definer, command `Connect`, in the
    event's schema (`migrate`'s own sessions never make it their default schema)."""
    user = definer.rpartition("@")[0]
    rows = s.run("SELECT id FROM information_schema.processlist WHERE command = 'Connect' AND db = %s AND user = %s "
                 "AND id <> CONNECTION_ID()", (TOOL_SCHEMA, user))
    return [int(r["id"]) for r in rows]


def stopped(s: Session) -> bool:
    """Nothing of the event writes on this server now or later: absent, or not enabled and no run in its body."""
    found = read(s)
    return found is None or (found["status"] != "ENABLED" and not _running(s, found["definer"]))


def stop(s: Session, wait_s: float = STOP_WAIT_S, *, disabled: Callable[[], None] = lambda: None) -> str | None:
    """Disable the event (then call `disabled`) and wait for a run still in its body to end; None when there is
    no event."""
    found = read(s)
    if found is None:
        return None
    if found["status"] == "ENABLED":
        set_enabled(s, False)
    disabled()
    deadline = time.monotonic() + wait_s
    while running := _running(s, found["definer"]):
        if time.monotonic() > deadline:
            raise MigrateError(f"{FULL_NAME} is disabled but a run of it (thread {running[0]}) is still in its body "
                               f"after {wait_s:g} s: it could write after the block",
                               hint=f"see SHOW PROCESSLIST on the source; KILL {running[0]} (RDS: CALL "
                                    f"mysql.rds_kill({running[0]})), then retry")
        time.sleep(0.05)
    return f"{FULL_NAME} stopped: disabled, no run of it left"
