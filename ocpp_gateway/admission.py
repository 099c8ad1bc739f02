"""What a station that is not Accepted may send, besides BootNotification.

OCPP 2.0.1 B02.FR.09 (test case TC_B_30_CSMS; 2.1 alike) and 1.6 §4.2.1: while Pending,
a station sends only what the backend itself asked for. That is

- the messages a TriggerMessage produces: one, or for StatusNotification and MeterValues
  without a connector (1.6) or EVSE (2.x) one per connector / EVSE ("for all allowed
  connectorId values", 1.6 §5.17), each address once;
- the NotifyReport parts answering a GetBaseReport or GetReport: its requestId, parts in
  order (the latest may come again, as a charger retries an unanswered one), until the
  part without `tbc`.

Each of our CALLs that asks for something opens an expectation when it is sent. The
charger's answer confirms it (Accepted: its time window starts) or closes it (anything
else, a CALLERROR, no answer). A frame is checked in constant time: one dict lookup and
at most MAX_OPEN_PER_ACTION expectations of its action, each a set or integer check;
nothing here touches the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ocpp_spec.commands import TRIGGERED_PER_CONNECTOR

# How long after the charger accepted a TriggerMessage its messages are admitted.
TRIGGER_WINDOW = 60.0
# How long after the report was accepted, or after its latest part, the next part may come.
REPORT_PART_WINDOW = 60.0
# Distinct connectors (EVSEs) one trigger without a connector admits: more than any
# charger has, so the bound never refuses a real one, and a station cannot make up
# addresses without end.
MAX_TRIGGERED_ADDRESSES = 32
# Parts of one report (a device model sent a variable per part stays far below).
MAX_REPORT_PARTS = 10_000
# Expectations kept per action: a charger that never sends what it was asked for must
# not bank unlimited passes.
MAX_OPEN_PER_ACTION = 3

# 2.x requestedMessage values that are not the name of the message they trigger.
_TRIGGERED_ACTIONS = {
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "SignCombinedCertificate": "SignCertificate",
}
# Our CALLs whose answer comes as NotifyReport messages of the same requestId.
_REPORT_REQUESTS = frozenset({"GetBaseReport", "GetReport"})


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _address_16(action: str, payload: dict) -> tuple:
    return (_int(payload.get("connectorId")),)


def _address_2x(action: str, payload: dict) -> tuple:
    if action == "StatusNotification":
        return (_int(payload.get("evseId")), _int(payload.get("connectorId")))
    return (_int(payload.get("evseId")),)


def _scope_16(action: str, trigger: dict) -> tuple:
    connector_id = _int(trigger.get("connectorId"))
    return () if connector_id is None else (connector_id,)


def _scope_2x(action: str, trigger: dict) -> tuple:
    evse = trigger.get("evse")
    if not isinstance(evse, dict) or _int(evse.get("id")) is None:
        return ()
    scope: tuple = (evse["id"],)
    if action == "StatusNotification" and _int(evse.get("connectorId")) is not None:
        scope += (evse["connectorId"],)
    return scope


class _Expectation:
    """Something we asked for; `admit` says whether a message is (part of) it."""

    deadline: float
    done: bool = False

    def confirm(self, now: float) -> None:
        raise NotImplementedError

    def admit(self, payload: dict, now: float) -> bool:
        raise NotImplementedError


class _Triggered(_Expectation):
    """The messages of one TriggerMessage: each address within `scope` once, up to `limit`."""

    def __init__(self, *, scope: tuple, address_length: int, address, deadline: float):
        self.scope = scope
        self.address = address
        # A full address names one connector: one message. A shorter one (none, or an
        # EVSE without its connector) is every connector within it.
        self.limit = 1 if len(scope) == address_length else MAX_TRIGGERED_ADDRESSES
        self.seen: set[tuple] = set()
        self.deadline = deadline

    def confirm(self, now: float) -> None:
        self.deadline = now + TRIGGER_WINDOW

    def admit(self, payload: dict, now: float) -> bool:
        address = self.address(payload)
        if address[: len(self.scope)] != self.scope or address in self.seen:
            return False
        self.seen.add(address)
        self.done = len(self.seen) >= self.limit
        return True


class _Report(_Expectation):
    """The NotifyReport parts answering one GetBaseReport / GetReport."""

    def __init__(self, *, request_id: Any, deadline: float):
        self.request_id = request_id
        self.last_seq_no = -1
        self.deadline = deadline

    def confirm(self, now: float) -> None:
        self.deadline = now + REPORT_PART_WINDOW

    def admit(self, payload: dict, now: float) -> bool:
        seq_no = _int(payload.get("seqNo"))
        if payload.get("requestId") != self.request_id or seq_no is None:
            return False
        if not self.last_seq_no <= seq_no < MAX_REPORT_PARTS:
            return False
        if seq_no > self.last_seq_no:
            # A new part: the next one has a window of its own (a resent part has not).
            self.last_seq_no = seq_no
            self.deadline = now + REPORT_PART_WINDOW
        self.done = not payload.get("tbc", False)
        return True


class Admission:
    """Per connection: the expectations our CALLs opened, and the check of each frame.

    `expect` when a CALL goes out, `answered` when its answer (or none) comes back;
    `expects` before a frame's schema check, `admit` after it (consuming what it uses).
    """

    def __init__(self, version: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        if version == "1.6":
            # 1.6 numbers connectors station-wide: connectorId addresses both messages.
            self._address, self._scope, self._status_address_length = _address_16, _scope_16, 1
        else:
            # 2.x: a status is of (evseId, connectorId), meter values of an evseId.
            self._address, self._scope, self._status_address_length = _address_2x, _scope_2x, 2
        self._clock = clock
        # action -> open expectations, oldest first; an action without any has no key.
        self._open: dict[str, list[_Expectation]] = {}
        # Our CALL's message id -> the expectation its answer confirms or closes.
        self._unanswered: dict[str, tuple[str, _Expectation]] = {}

    def expect(self, unique_id: str, action: str, payload: dict, *, answer_within: float) -> None:
        """We send CALL `action`: open what it asks the charger to send, if anything."""
        if action != "TriggerMessage" and action not in _REPORT_REQUESTS:
            return
        # Until the answer comes (or cannot any more): then `answered` decides.
        deadline = self._clock() + answer_within + max(TRIGGER_WINDOW, REPORT_PART_WINDOW)
        if action == "TriggerMessage":
            requested = payload.get("requestedMessage")
            if not isinstance(requested, str):
                return
            message = _TRIGGERED_ACTIONS.get(requested, requested)
            expectation = self._triggered(message, payload, deadline)
        else:
            message = "NotifyReport"
            expectation = _Report(request_id=payload.get("requestId"), deadline=deadline)
        open_ = self._open.setdefault(message, [])
        open_.append(expectation)
        if len(open_) > MAX_OPEN_PER_ACTION:
            del open_[0]
        self._unanswered[unique_id] = (message, expectation)

    def _triggered(self, message: str, trigger: dict, deadline: float) -> _Triggered:
        if message not in TRIGGERED_PER_CONNECTOR:
            # The connector is irrelevant to it and ignored (1.6 §5.17): one message.
            return _Triggered(scope=(), address_length=0, address=lambda p: (), deadline=deadline)
        address = self._address
        return _Triggered(
            scope=self._scope(message, trigger),
            address_length=self._status_address_length if message == "StatusNotification" else 1,
            address=lambda payload: address(message, payload),
            deadline=deadline,
        )

    def answered(self, unique_id: str, response: Any) -> None:
        """The charger answered our CALL `unique_id` (`response` None: an error, or nothing)."""
        entry = self._unanswered.pop(unique_id, None)
        if entry is None:
            return
        message, expectation = entry
        if isinstance(response, dict) and response.get("status") == "Accepted":
            expectation.confirm(self._clock())
        else:
            self._close(message, expectation)

    def expects(self, action: str) -> bool:
        """Whether anything of `action` is expected (a cheap look before the schema check)."""
        return action in self._open

    def admit(self, action: str, payload: dict) -> bool:
        """Whether the station may send this (schema-valid) message now; uses up its place."""
        open_ = self._open.get(action)
        if not open_:
            return False
        now = self._clock()
        for expectation in list(open_):
            if expectation.deadline < now:
                self._close(action, expectation)
            elif expectation.admit(payload, now):
                if expectation.done:
                    self._close(action, expectation)
                return True
        return False

    def _close(self, action: str, expectation: _Expectation) -> None:
        open_ = self._open.get(action)
        if open_ is None:
            return
        if expectation in open_:
            open_.remove(expectation)
        if not open_:
            del self._open[action]
