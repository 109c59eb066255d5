"""Logs are telemetry, the ledger is data.

structlog with stable dotted event names (``erasure.run.started``,
``erasure.retry.scheduled``, ...) and keyword fields. JSON lines on stderr
when stderr is not a terminal or ``--log-format json`` is given (then every
stderr line is one JSON object), a console renderer on a terminal. Fields
hold keys, never identifiers, and never the token.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

LogFormat = Literal["json", "console"]


def choose_format(requested: str | None, stream: TextIO | None = None) -> LogFormat:
    stream = stream or sys.stderr
    if requested in ("json", "console"):
        return requested  # type: ignore[return-value]
    return "console" if stream.isatty() else "json"


def configure(fmt: LogFormat, *, level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Configure structlog for the whole process."""
    stream = stream or sys.stderr
    # httpx logs every request at INFO through the standard library: keep it quiet
    logging.getLogger("httpx").setLevel(logging.WARNING)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        processors += [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("erasure")
    return logger
