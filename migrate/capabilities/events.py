"""Events on the target: kept disabled while it replicates (they would diverge it), enabled at promotion.
ALTER EVENT names the DEFINER explicitly, so the event keeps running as the account it ran as."""

from __future__ import annotations

from migrate.adapters.db import Session, quote_ident
from migrate.capabilities.inspector import TOOL_SCHEMA, Account


def enabled_names(events: list[dict]) -> list[str]:
    """`schema.name` of the application's ENABLED ones among `inspector.events(...)` rows: migrate's own (the
    heartbeat's, which writes the source's server id) is never enabled on the target."""
    return [f"{e['schema']}.{e['name']}" for e in events if e["status"] == "ENABLED" and e["schema"] != TOOL_SCHEMA]


def set_enabled(session: Session, schema: str, name: str, definer: str, enable: bool) -> None:
    user, _, host = definer.rpartition("@")
    session.run(f"ALTER DEFINER = {Account(user, host).sql()} EVENT {quote_ident(schema)}.{quote_ident(name)} "
                + ("ENABLE" if enable else "DISABLE"))
