"""Structured logging: `LOG_FORMAT=json` writes one JSON object per line to stdout.

Fields: `time` (UTC, ISO 8601 with milliseconds), `level`, `logger`, `message`, `cbid`
(the charger a websocket's lines are about), `request_id` (an HTTP request's: the
`X-Request-ID` header a proxy set, or a new one, echoed in the response) where known, and
`exc_info` for exceptions.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

from ocpp_gateway.log_context import cbid

request_id: ContextVar[str] = ContextVar("request_id", default="")

# A proxy's request id is trusted only when it looks like one (it ends up in every line).
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if station := cbid.get():
            entry["cbid"] = station
        if request := request_id.get():
            entry["request_id"] = request
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class RequestIdMiddleware:
    """Give every HTTP request an id for its log lines, and return it as X-Request-ID."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        sent = request.headers.get("X-Request-ID", "")
        value = sent if REQUEST_ID.match(sent) else uuid.uuid4().hex
        token = request_id.set(value)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response["X-Request-ID"] = value
        return response
