"""Logging for every process: JSON lines on stdout (or readable text for development).

One configuration serves gunicorn's master (through `logconfig_dict` in gunicorn.conf.py, so its
own "Booting worker" lines are JSON too) and the workers. Each line carries the pid and, inside a
request, the request id, so one request can be followed across the logs of several workers.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from .config import Settings

JSON_FIELDS = ("levelname", "name", "message", "process")
RENAMED = {"levelname": "level", "name": "logger", "process": "pid"}


class RequestContext(logging.Filter):
    """Adds `request_id` to every record made while a Flask request is being served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            from flask import g, has_request_context

            record.request_id = g.get("request_id") if has_request_context() else None
        return True


class TextFormatter(logging.Formatter):
    """Development format: the usual line, then the structured extras as key=value."""

    _standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in self._standard and v is not None}
        rid = getattr(record, "request_id", None)
        tail = " ".join(f"{k}={v}" for k, v in extras.items())
        return f"{line}{f' [{rid}]' if rid else ''}{f' {tail}' if tail else ''}"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary (also gunicorn's `logconfig_dict`)."""
    level = settings.log_level.upper()
    if settings.log_format == "json":
        formatter: dict[str, Any] = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": list(JSON_FIELDS),
            "rename_fields": RENAMED,
            "timestamp": "time",  # ISO 8601 in UTC with microseconds
        }
    else:
        formatter = {"()": TextFormatter, "fmt": "%(asctime)s %(levelname)-7s %(name)s pid=%(process)d %(message)s"}
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
        "formatter": "main",
        "filters": ["request"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": RequestContext}},
        "formatters": {"main": formatter},
        "handlers": {"stdout": handler},
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # gunicorn's loggers keep their own handlers unless told otherwise: route them to ours.
            "gunicorn.error": {"level": level, "handlers": ["stdout"], "propagate": False},
            # The app logs each request itself, with its id, route and duration.
            "gunicorn.access": {"level": "WARNING", "handlers": ["stdout"], "propagate": False},
            # Libraries that narrate at INFO (model loading, HTTP clients) stay at WARNING.
            "sentence_transformers": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }


def configure_logging(settings: Settings) -> None:
    logging.config.dictConfig(logging_config(settings))
