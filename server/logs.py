"""Log lines a machine or a person can read, each with its ``extra={}`` fields and the job's.

``SHORTVID_LOG_FORMAT=json`` writes one JSON object a line (``ts``, ``level``, ``logger``,
``message``, then the fields); ``text`` writes ``ts LEVEL logger: message key=value …``. The stock
formatter drops ``extra`` fields, which is where our log calls put their facts.

A job's fields (id, type, attempt) are set once around the job (``job_context``) and merged into
every record logged in that context, so a line logged deep in ``scraper`` during the job names the
job too; the browser session comes from the pool's own context (``scraper.pool.current_session``).
An API request's lines carry its ``request_id`` the same way (``log_fields``, set by
``server.middleware.request_ids``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TextIO, cast

from server.settings import LogFormat

_JOB: contextvars.ContextVar[Mapping[str, object] | None] = contextvars.ContextVar(
    "shortvid_job_log_fields", default=None
)
#: A record's own attributes; anything else on it came from ``extra={}``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
#: Loggers that say too much at INFO: APScheduler's executor logs every run of every duty twice;
#: Alembic (1.16+) logs each of its autogenerate plugins being set up, at every start.
_QUIETER = {"apscheduler.executors.default": logging.WARNING, "alembic.runtime.plugins": logging.WARNING}


@contextlib.contextmanager
def job_context(**fields: object) -> Iterator[None]:
    """Tag every record logged here, and in the tasks started here, with ``fields`` and the session.

    The sessions the work leases are collected for the lines logged after the lease (the outcome).
    """
    from scraper.pool import LEASED  # here, not at the top: the CLI logs without loading Playwright

    fields_token = _JOB.set({**(_JOB.get() or {}), **fields})
    leased_token = LEASED.set([])
    try:
        yield
    finally:
        LEASED.reset(leased_token)
        _JOB.reset(fields_token)


@contextlib.contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Tag every record logged here with ``fields`` (a request's ``request_id``), nothing else."""
    token = _JOB.set({**(_JOB.get() or {}), **fields})
    try:
        yield
    finally:
        _JOB.reset(token)


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The job's fields, the session, then the record's ``extra`` fields (which win)."""
    fields = dict(_JOB.get() or {})
    session = _session()
    if session is not None:
        fields["session"] = session
    for key, value in vars(record).items():
        if key not in _STANDARD and not key.startswith("_"):
            fields[key] = value
    return fields


def _session() -> str | None:
    """The browser session of this context; a process that never imported the pool leased none."""
    pool = sys.modules.get("scraper.pool")
    return cast("str | None", pool.current_session()) if pool is not None else None


def _timestamp(record: logging.LogRecord) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, like the API's timestamps."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object a line; values JSON cannot hold are written as their ``str()``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # ASCII only: a U+2028 in a title must not split the line for a line-oriented reader.
        return json.dumps(entry, default=str)


def _text_value(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    """``2026-01-02T03:04:05.678Z INFO server.worker: job failed job_id=… error_code=blocked``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        fields = " ".join(f"{key}={_text_value(value)}" for key, value in record_fields(record).items())
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else KeyValueFormatter()


class _OurHandler(logging.StreamHandler[TextIO]):
    """Marks the handler ``configure_logging`` installed, so a second call replaces only it."""


def configure_logging(
    log_format: LogFormat = "text", *, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) in ``log_format``; quiet chatty loggers.

    Handlers others attached to the root logger (pytest's, an embedding program's) are left alone.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
        old.close()
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level)
    quiet_chatty_loggers()
    return handler


def quiet_chatty_loggers() -> None:
    """Raise the level of loggers that log routine work at INFO, unless someone set theirs."""
    for name, level in _QUIETER.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
