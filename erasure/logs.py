"""Logs are telemetry, the ledger is data.

structlog with stable dotted event names (``erasure.run.started``,
``erasure.retry.scheduled``, ...) and keyword fields. JSON lines on stderr
when stderr is not a terminal or ``--log-format json`` is given (then every
stderr line is one JSON object), a console renderer on a terminal. Fields
hold keys, never identifiers, and never the token.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
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
    given = stream
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
    _route_libraries(fmt, given)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("erasure")
    return logger


class _JsonLines(logging.Handler):
    """The standard library's records (libraries: fastexcel's Rust log, httpx) as JSON lines.

    Under ``--log-format json`` every stderr line is one JSON object; a
    library's own warning ("Could not determine dtype for column 3") would
    otherwise reach stderr as plain text through logging's last resort.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(logging.WARNING)
        self.stream = stream  # None: whatever sys.stderr is when a record comes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.dumps(
                {
                    "event": "erasure.library.log",
                    "level": record.levelname.lower(),
                    "logger": record.name,
                    "message": record.getMessage(),
                    "timestamp": datetime.fromtimestamp(record.created, UTC)
                    .isoformat()
                    .replace("+00:00", "Z"),
                }
            )
            print(line, file=self.stream or sys.stderr)
        except Exception:  # a log line must never stop the run
            self.handleError(record)


def _route_libraries(fmt: LogFormat, stream: TextIO | None) -> None:
    """JSON lines for the standard library's loggers too (json), or logging's own (console)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _JsonLines)]:
        root.removeHandler(handler)
    if fmt == "json":
        root.addHandler(_JsonLines(stream))
