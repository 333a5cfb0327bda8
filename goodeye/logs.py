"""Log lines of the app, gunicorn and the sweeper: JSON or text (GOODEYE_LOG_FORMAT), one per request.

Every request's line carries its id: nginx's `$request_id`, which nginx sends
to the app as `X-Request-Id` (overwriting whatever a client sent), writes in its
own access log and returns to the client.
"""

import json
import logging
import logging.config
import re
from datetime import datetime, timezone

REQUEST_LOGGER = "goodeye.request"
# nginx's $request_id is 32 hex digits; anything else the app makes up itself.
REQUEST_ID = re.compile(r"^[0-9a-f]{32}\Z")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's `fields` and any traceback.

    A dozen lines over json.dumps, so no logging dependency for it.
    """

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT followed by the record's `fields` as key=value (values JSON-escaped, one line each)."""

    def __init__(self):
        super().__init__(TEXT_FORMAT)

    def format(self, record):
        line = super().format(record)
        fields = getattr(record, "fields", {})
        if fields:
            line += " " + " ".join(f"{key}={json.dumps(value, default=str)}" for key, value in fields.items())
        return line


def logging_config(log_format):
    """A logging.config dict for the whole process (gunicorn's logconfig_dict takes it as is)."""
    formatter = {"()": f"{__name__}.{'JsonFormatter' if log_format == 'json' else 'TextFormatter'}"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"goodeye": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "goodeye", "stream": "ext://sys.stderr"}},
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            # The app writes one line per request itself (with the request id): gunicorn's would repeat it.
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


def configure(log_format):
    """Apply logging_config to this process (the sweeper, `goodeye serve`)."""
    logging.config.dictConfig(logging_config(log_format))


def log_request(request_id, method, path, status, duration_ms, family):
    """The one line the app writes per request."""
    logging.getLogger(REQUEST_LOGGER).info(
        "%s %s %s",
        method,
        json.dumps(path),
        status,
        extra={
            "fields": {
                "request_id": request_id,
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(duration_ms, 2),
                "family": family,
            }
        },
    )
