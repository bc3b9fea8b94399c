"""External commands at named points of a run (gh-ost's hooks), with context in MIGRATE_* variables.

Hooks run on the machine that runs `migrate`. A failing before_cutover hook stops the cutover before
anything changed; after_cutover and on_failure hooks are reported, never fatal.
"""

from __future__ import annotations

from migrate.adapters.executor import CommandResult, LocalExecutor
from migrate.capabilities.migration import Migration
from migrate.errors import CommandFailed, CommandTimeout, Refused

HOOK_TIMEOUT_S = 60.0


def environment(m: Migration, hook: str, **extra: str) -> dict[str, str]:
    host, port = m.source_address
    env = {"MIGRATE_HOOK": hook, "MIGRATE_NAME": m.pb.name, "MIGRATE_SOURCE_HOST": host,
           "MIGRATE_SOURCE_PORT": str(port), "MIGRATE_TARGET_HOST": m.pb.target.host,
           "MIGRATE_TARGET_PORT": str(m.pb.target.port), "MIGRATE_STATE_DIR": str(m.pb.run_dir)}
    return env | {f"MIGRATE_{k.upper()}": str(v) for k, v in extra.items()}


def run(m: Migration, hook: str, *, fatal: bool, **extra: str) -> CommandResult | None:
    command = getattr(m.pb.hooks, hook)
    if not command:
        return None
    try:
        return LocalExecutor(label=f"hook {hook}").run(command, timeout=HOOK_TIMEOUT_S,
                                                        env=environment(m, hook, **extra))
    except (CommandFailed, CommandTimeout) as exc:
        if fatal:
            raise Refused(f"the {hook} hook said no: {exc}", hint="fix the hook or what it checks, then retry") from None
        return None
