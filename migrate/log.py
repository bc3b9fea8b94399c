"""Structured logs on stderr (console or JSON), with every known secret scrubbed from every line."""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from typing import Any

import structlog

_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None  # every known secret, longest first: one pass over a text
_lock = threading.Lock()
_SECRET_KEYS = re.compile(r"pass(word)?|secret|token|credential", re.I)
REDACTED = "***"


def register_secret(value: str) -> None:
    """Remember a secret value so that no log line can carry it, whatever key it hides under."""
    global _pattern
    if value and len(value) >= 3:
        with _lock:
            _secrets.add(value)
            _pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))


def redact(text: str) -> str:
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None and text else text


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    return _SECRET_KEYS.search(key) is not None


def redact_value(key: str, value: Any) -> Any:
    if _secret_key(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(key, v) for v in value]
    return value


def _redact_processor(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    return {k: redact_value(k, v) for k, v in event.items()}


def configure(fmt: str = "console", level: str = "info") -> None:
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get(**context: Any) -> Any:
    return structlog.get_logger("migrate").bind(**context)
