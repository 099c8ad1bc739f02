"""What the log lines of the current task are about: the charger's CBID.

Set once per connection in `StationConsumer.connect`; every log line written while that
consumer's task (or a task or database thread it started: they copy the context) runs
carries it in the JSON log format (virta/logging.py).
"""

from __future__ import annotations

from contextvars import ContextVar

cbid: ContextVar[str] = ContextVar("cbid", default="")
