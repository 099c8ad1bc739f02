"""Prometheus metrics of the OCPP gateway, created once at import.

Counted where the work happens, cheaply: a counter's increment is a dictionary lookup for
its labels (cached here) and an add under a lock; with `PROMETHEUS_MULTIPROC_DIR` set (one
directory shared by the daphne processes, emptied before they start) the value lives in a
memory-mapped file that `/metrics` (virta/metrics.py) adds up across processes.

Label values come from fixed sets only: an action the version does not define, or an
error code OCPP does not define, is counted as "other", so a charger cannot grow the
series without bound.
"""

from __future__ import annotations

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

from ocpp_spec.errors import V2_ERRORS, V16_ERRORS

OTHER = "other"
MESSAGE_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR", 5: "CALLRESULTERROR", 6: "SEND"}
KNOWN_ERROR_CODES = frozenset(
    code
    for codes in (V16_ERRORS, V2_ERRORS)
    for code in vars(codes).values()
    if isinstance(code, str)
) | {"SecurityError", "MessageTypeNotSupported", "FormationViolation"}

CONNECTED = Gauge(
    "ocpp_connected_chargers",
    "Chargers connected now, per OCPP version.",
    ["version"],
    multiprocess_mode="livesum",
)
FRAMES = Counter(
    "ocpp_frames",
    "OCPP-J frames received (in) and sent (out), per message type and action.",
    ["direction", "type", "action"],
)
CALLERRORS = Counter(
    "ocpp_callerrors",
    "CALLERRORs received from chargers (in) and sent to them (out), per error code.",
    ["direction", "code"],
)
HANDSHAKE_REFUSALS = Counter(
    "ocpp_handshake_refusals", "Refused websocket handshakes, per reason.", ["reason"]
)
CALL_DURATION = Histogram(
    "ocpp_call_duration_seconds",
    "Time from a charger's CALL to our answer being sent, per action.",
    ["action"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FLUSH_LAG = Histogram(
    "ocpp_db_flush_lag_seconds",
    "Age of the oldest item of a batch when it was committed, per writer.",
    ["writer"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_SIZE = Histogram(
    "ocpp_db_batch_size",
    "Items written per database batch, per writer.",
    ["writer"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
)
COMMAND_RESULTS = Counter(
    "ocpp_command_results", "Outcomes of commands sent to chargers, per status.", ["status"]
)
CHANNEL_LAYER_ERRORS = Counter(
    "ocpp_channel_layer_errors",
    "Failed channel-layer (Redis) operations, per operation.",
    ["operation"],
)

_frames: dict[tuple[str, int | None, str], object] = {}
_durations: dict[str, object] = {}


def frame(direction: str, message_type: int | None, action: str, known: frozenset[str]) -> None:
    """One frame in or out; `known`: the actions of the connection's OCPP version."""
    label = action if not action or action in known else OTHER
    key = (direction, message_type, label)
    child = _frames.get(key)
    if child is None:
        kind = MESSAGE_TYPES.get(message_type, "invalid")  # type: ignore[arg-type]
        child = _frames[key] = FRAMES.labels(direction, kind, label)
    child.inc()


def callerror(direction: str, code: str) -> None:
    CALLERRORS.labels(direction, code if code in KNOWN_ERROR_CODES else OTHER).inc()


def call_answered(action: str, seconds: float, known: frozenset[str]) -> None:
    label = action if action in known else OTHER
    child = _durations.get(label)
    if child is None:
        child = _durations[label] = CALL_DURATION.labels(label)
    child.observe(seconds)


def flushed(writer: str, size: int, lag: float) -> None:
    BATCH_SIZE.labels(writer).observe(size)
    FLUSH_LAG.labels(writer).observe(lag)


def _off(*args: object) -> None:
    return None


if not settings.OCPP_METRICS:
    # Measuring the metrics' own cost (bench/run.py --metrics-cost): the frame path's
    # calls do nothing.
    frame = callerror = call_answered = flushed = _off  # type: ignore[assignment]
