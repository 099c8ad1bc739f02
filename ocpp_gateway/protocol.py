"""The OCPP-J frame path shared by every version: parsing, errors, validation, dispatch.

The `ocpp` library's own `route_message` answers an unparseable frame with nothing and
uses 2.x error names on 1.6, so `OcppProtocol.route_message` replaces it. Handlers stay
the library's `@on(Action.X)` methods on the per-version ChargePoint classes; handlers of
OCPP 2.1 SEND messages are marked `@on_send("Action")`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import json
import logging
import math
import re
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from time import perf_counter
from typing import Any

import fastjsonschema
from django.conf import settings
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import get_validator

from ocpp_gateway import metrics
from ocpp_gateway.admission import Admission
from ocpp_gateway.limits import FrameRateLimit
from ocpp_gateway.message_log import MessageLog
from ocpp_gateway.runtime import TaskSet
from ocpp_spec.close_codes import CLOSE_POLICY_VIOLATION
from ocpp_spec.errors import CallErrorReply, ErrorCodes, error_codes_for
from ocpp_spec.times import parse_ocpp_time
from stations.services.sessions import StationSession

logger = logging.getLogger(__name__)

CALL, CALLRESULT, CALLERROR = 2, 3, 4
# OCPP-J 2.1 adds an error about a CALLRESULT, and unconfirmed messages: neither answered.
CALLRESULTERROR, SEND = 5, 6
UNREADABLE_ID = "-1"
# Deepest nesting of arrays and objects taken in a frame (the frame's own array is level 1).
# OCPP's schemas nest a handful of levels; customData may nest more, never this much.
MAX_NESTING = 32
MAX_UNIQUE_ID = 36
# Message ids remembered per connection to refuse a reused one. A charger waits for each
# answer, so a reuse is a resend of one of its last few messages; few, since each costs
# memory on every connection (bench/RESULTS.md, steady fleet).
REMEMBERED_IDS = 16


@dataclass
class Frame:
    message_type: int
    unique_id: str
    action: str = ""
    payload: Any = None
    error_code: str = ""
    error_description: str = ""
    error_details: Any = None


class CallErrorReceived(Exception):
    """The charger answered one of our CALLs with a CALLERROR."""

    def __init__(self, code: str, description: str, details: Any = None):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class _Reject(CallErrorReply):
    def __init__(
        self,
        unique_id: str,
        code: str,
        description: str,
        details: dict | None = None,
        *,
        silent: bool = False,
    ):
        super().__init__(code, description, details)
        self.unique_id = unique_id
        # An OCPP 2.1 CALLRESULTERROR or SEND, which is never answered, not even so.
        self.silent = silent


# The message id at the start of a frame that is not valid JSON as a whole.
_LEADING_ID_RE = re.compile(r'^\s*\[\s*\d+\s*,\s*"([^"\\\x00-\x1f]{1,36})"\s*[,\]]')


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # 1e400 parses to inf, which the JSON log column (PostgreSQL jsonb) refuses.
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is out of range")
    return number


def _loads(raw: str) -> Any:
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)


def readable_id(raw: str) -> str:
    """The message id of a frame we refuse whole, or "-1" when none can be read."""
    try:
        data = _loads(raw)
    except (ValueError, RecursionError):
        match = _LEADING_ID_RE.match(raw)
        return match.group(1) if match else UNREADABLE_ID
    if isinstance(data, list) and len(data) > 1 and isinstance(data[1], str):
        if 0 < len(data[1]) <= MAX_UNIQUE_ID and not _bad_text(data[1]):
            return data[1]
    return UNREADABLE_ID


def _bad_text(data: Any) -> str:
    """Why the frame's content cannot be handled or stored, or "" when it can.

    NUL characters and lone surrogates (both reachable through JSON escapes) are refused
    by PostgreSQL: logging them would fail the whole batch of log rows. Containers nested
    deeper than MAX_NESTING would exhaust the stack of everything recursive after this
    check (key conversion, schema validation, JSON encoding): a RecursionError there
    escaped the frame's error handling and killed the connection.
    """
    # Breadth first, one level of nesting at a time: the depth costs one count per level.
    level, depth = [data], 0
    while level:
        nested: list = []
        for item in level:
            if isinstance(item, dict):
                nested.extend(item)
                nested.extend(item.values())
            elif isinstance(item, list):
                nested.extend(item)
            elif isinstance(item, str):
                if "\x00" in item:
                    return "NUL characters are not allowed"
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return "Strings must be valid Unicode (no lone surrogates)"
        if nested:
            depth += 1
            if depth > MAX_NESTING:
                return f"JSON nested deeper than {MAX_NESTING} levels"
        level = nested
    return ""


def parse_frame(raw: str, codes: ErrorCodes, *, rpc_21: bool = False) -> Frame:
    """Parse one OCPP-J frame or raise `_Reject` with the CALLERROR to answer.

    `rpc_21`: the connection speaks OCPP 2.1, whose OCPP-J adds CALLRESULTERROR (5) and
    SEND (6); elsewhere they are MessageTypeNotSupported (1.6: FormationViolation).
    """
    try:
        data = _loads(raw)
    except RecursionError as exc:
        raise _Reject(
            readable_id(raw),
            codes.format_violation,
            f"JSON nested deeper than {MAX_NESTING} levels",
            silent=rpc_21 and raw.lstrip("[ \t\r\n")[:1] in ("5", "6"),
        ) from exc
    except ValueError as exc:
        # The id is often still readable (a truncated frame, a raw control character).
        raise _Reject(
            readable_id(raw), codes.rpc_framework_error, "Frame is not valid JSON"
        ) from exc
    if not isinstance(data, list) or not data:
        raise _Reject(UNREADABLE_ID, codes.rpc_framework_error, "Frame is not a JSON array")
    message_type = data[0]
    silent = rpc_21 and message_type in (CALLRESULTERROR, SEND)
    unique_id = data[1] if len(data) > 1 else None
    if (
        not isinstance(unique_id, str)
        or not unique_id
        or len(unique_id) > MAX_UNIQUE_ID
        or _bad_text(unique_id)
    ):
        raise _Reject(
            UNREADABLE_ID,
            codes.rpc_framework_error,
            "Message id must be a string of 1 to 36 characters",
            silent=silent,
        )
    problem = _bad_text(data)
    if problem:
        raise _Reject(unique_id, codes.format_violation, problem, silent=silent)
    if message_type == CALL:
        if len(data) != 4:
            raise _Reject(unique_id, codes.rpc_framework_error, "A CALL has exactly 4 elements")
        action, payload = data[2], data[3]
        if not isinstance(action, str) or not action:
            raise _Reject(unique_id, codes.rpc_framework_error, "Action must be a string")
        if not isinstance(payload, dict):
            raise _Reject(unique_id, codes.format_violation, "Payload must be a JSON object")
        return Frame(CALL, unique_id, action=action[:60], payload=payload)
    if message_type == CALLRESULT:
        if len(data) != 3:
            raise _Reject(unique_id, codes.rpc_framework_error, "A CALLRESULT has 3 elements")
        return Frame(CALLRESULT, unique_id, payload=data[2])
    if message_type == CALLERROR:
        if len(data) < 4:
            raise _Reject(unique_id, codes.rpc_framework_error, "A CALLERROR has 5 elements")
        details = data[4] if len(data) > 4 else {}
        return Frame(
            CALLERROR,
            unique_id,
            error_code=str(data[2])[:50],
            error_description=str(data[3])[:255],
            error_details=details,
        )
    if silent:
        return _parse_21(data, unique_id, codes)
    raise _Reject(
        unique_id,
        codes.message_type_not_supported,
        f"Message type {message_type!r} is not supported",
    )


def _parse_21(data: list, unique_id: str, codes: ErrorCodes) -> Frame:
    """An OCPP 2.1 CALLRESULTERROR (shaped as a CALLERROR) or SEND (shaped as a CALL)."""
    if data[0] == CALLRESULTERROR:
        if len(data) < 4:
            raise _Reject(
                unique_id,
                codes.rpc_framework_error,
                "A CALLRESULTERROR has 5 elements",
                silent=True,
            )
        return Frame(
            CALLRESULTERROR,
            unique_id,
            error_code=str(data[2])[:50],
            error_description=str(data[3])[:255],
            error_details=data[4] if len(data) > 4 else {},
        )
    if len(data) != 4:
        raise _Reject(unique_id, codes.rpc_framework_error, "A SEND has 4 elements", silent=True)
    action, payload = data[2], data[3]
    if not isinstance(action, str) or not action:
        raise _Reject(unique_id, codes.rpc_framework_error, "Action must be a string", silent=True)
    if not isinstance(payload, dict):
        raise _Reject(
            unique_id, codes.format_violation, "Payload must be a JSON object", silent=True
        )
    return Frame(SEND, unique_id, action=action[:60], payload=payload)


def on_send(action: str) -> Callable:
    """Mark a ChargePoint method as the handler of OCPP 2.1 SEND messages of `action`.

    It takes the payload's fields (snake_case) like an `@on` handler; what it returns is
    ignored: a SEND is never answered.
    """

    def mark(method: Callable) -> Callable:
        method._on_send = action
        return method

    return mark


# Schema validation. The `ocpp` library's validators (jsonschema) are slow for the frame
# path; the same schemas compiled to Python code (fastjsonschema) are fast but only say
# "valid": anything they refuse goes to the library's validator, which names the error
# (and tolerates what a lenient station may send). Formats are checked by neither (the
# library's validators have no format checker). Figures: bench/RESULTS.md.


@functools.lru_cache(maxsize=1024)
def _compiled(message_type: int, action: str, version: str) -> Callable[[Any], Any] | None:
    try:
        schema = get_validator(message_type, action, version).schema
    except (OSError, ValueError):
        return None
    # The library checks every version's schemas as draft 4 (0.0 is no integer there),
    # whatever draft a schema names: so does this.
    schema = {**schema, "$schema": "http://json-schema.org/draft-04/schema#"}
    try:
        return fastjsonschema.compile(schema, use_formats=False)
    except Exception:
        logger.exception("Could not compile the %s %s schema of %s", action, message_type, version)
        return None


def fast_valid(message_type: int, action: str, version: str, payload: Any) -> bool:
    """True when `payload` certainly satisfies the action's schema; False: ask jsonschema."""
    check = _compiled(message_type, action, version)
    if check is None:
        return False
    try:
        check(payload)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


# Key conversion between the wire's camelCase and the handlers' snake_case. The `ocpp`
# library runs two regular expressions per key per frame, and serialises answers through
# dataclasses.asdict (a deep copy) and two more passes. The same conversions, with each
# key converted once (bounded: keys come from chargers), in one pass.


@functools.lru_cache(maxsize=4096)
def _snake_key(key: str) -> str:
    return next(iter(camel_to_snake_case({key: None})))


@functools.lru_cache(maxsize=4096)
def _camel_key(key: str) -> str:
    return next(iter(snake_to_camel_case({key: None})))


def to_snake_case(data: Any) -> Any:
    """The library's `camel_to_snake_case`, faster."""
    if isinstance(data, dict):
        return {_snake_key(key): to_snake_case(value) for key, value in data.items()}
    if isinstance(data, list):
        return [to_snake_case(value) for value in data]
    return data


def to_camel_case(data: Any) -> Any:
    """A handler's answer as a JSON payload: dataclasses to dicts, Nones dropped, keys in
    camelCase (the library's serialize_as_dict, remove_nones and snake_to_camel_case)."""
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        return {
            _camel_key(field.name): to_camel_case(value)
            for field in dataclasses.fields(data)
            if (value := getattr(data, field.name)) is not None
        }
    if isinstance(data, dict):
        return {
            _camel_key(key): to_camel_case(value)
            for key, value in data.items()
            if value is not None
        }
    if isinstance(data, list | tuple):
        return [to_camel_case(value) for value in data if value is not None]
    return data


def _dumps(frame: list) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


class OcppProtocol:
    """Mixin for the `ocpp` library's ChargePoint classes: the backend's frame path.

    Subclasses set `_ocpp_version` (the library's attribute), `actions` (every action
    name the version defines, for NotImplemented vs NotSupported) and may extend
    `COSMETIC_FIELDS`: per action, fields whose over-long values are accepted because
    real firmware sends them and refusing would brick the charger.
    """

    actions: frozenset[str] = frozenset()
    COSMETIC_FIELDS: dict[str, frozenset[str]] = {}
    # Requests a station may send before it is Accepted, unasked (what the backend asked
    # for is admitted by `admission`).
    ALLOWED_BEFORE_ACCEPTED = frozenset({"BootNotification"})
    # OCPP-J 2.1 framing: CALLRESULTERROR and SEND are accepted, never answered.
    rpc_21: bool = False
    # SEND action -> name of its `@on_send` method (collected per class).
    _send_handlers: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._send_handlers = {
            action: name
            for name in dir(cls)
            if (action := getattr(getattr(cls, name, None), "_on_send", None))
        }

    def __init__(
        self,
        session: StationSession,
        connection: Any,
        *,
        log: MessageLog,
        call_timeout: float = 30,
    ) -> None:
        self.session = session
        super().__init__(session.cbid, connection, response_timeout=call_timeout)
        self.codes = error_codes_for(self._ocpp_version)
        self.log = log
        # The charger's recent message ids -> their action (a 2.1 CALLRESULTERROR names one).
        self._seen_ids: OrderedDict[str, str] = OrderedDict()
        self._pending: dict[str, tuple[str, asyncio.Future]] = {}
        self.admission = Admission(self._ocpp_version)
        self._tasks = TaskSet(logger)
        self.rate_limit = FrameRateLimit(
            rate=settings.OCPP_RATE_LIMIT_PER_SECOND,
            burst=settings.OCPP_RATE_LIMIT_BURST,
            strikes=settings.OCPP_RATE_LIMIT_STRIKES,
        )
        self.max_tasks = settings.OCPP_MAX_TASKS_PER_CONNECTION
        self._closing = False

    @property
    def id(self) -> str:
        """The charger's identity (the `ocpp` library's name for it): the session's CBID."""
        return self.session.cbid

    @id.setter
    def id(self, value: str) -> None:
        # The library's __init__ sets it; the session already holds it.
        if value != self.session.cbid:
            raise ValueError(f"{value!r} is not this session's CBID")

    # ---- incoming -----------------------------------------------------------------

    async def route_message(self, raw: str, *, binary: bool = False) -> None:
        """Answer one frame from the charger; never raises for what the charger sent."""
        if self._closing:
            return
        if not self.rate_limit.allow():
            await self._refuse_over_rate(raw)
            return
        if binary and not self.session.lenient:
            # OCPP-J is text frames only; a lenient station's binary JSON is read as text.
            self._log_in(None, raw=raw)
            await self._send_error(
                readable_id(raw), self.codes.format_violation, "OCPP-J frames must be text frames"
            )
            return
        try:
            frame = parse_frame(raw, self.codes, rpc_21=self.rpc_21)
        except _Reject as reject:
            self._log_in(None, raw=raw)
            if reject.silent:
                logger.warning("%s: dropped a malformed frame: %s", self.id, reject.description)
                return
            await self._send_error(reject.unique_id, reject.code, reject.description)
            return
        self._log_in(frame)
        if frame.message_type == CALL:
            await self._handle_frame_call(frame)
        elif frame.message_type == SEND:
            await self._handle_send(frame)
        elif frame.message_type == CALLRESULTERROR:
            self._note_result_error(frame)
        else:
            self._resolve_pending(frame)

    def stop_reading(self) -> None:
        """The connection is being closed: frames still queued are ignored."""
        self._closing = True

    async def _refuse_over_rate(self, raw: str) -> None:
        """A frame over the connection's rate: a CALL gets GenericError, others are dropped.

        Not written to the message log (a flood would fill it); counted and logged once
        per ten refusals. A charger that keeps flooding is disconnected.
        """
        limit = self.rate_limit
        if limit.refused % 10 == 1:
            logger.warning("%s: over the frame rate limit (%d refused)", self.id, limit.refused)
        if limit.flooding:
            logger.warning("%s: disconnected for flooding", self.id)
            self._closing = True
            await self._connection.close(code=CLOSE_POLICY_VIOLATION)
            return
        try:
            frame = parse_frame(raw, self.codes)
        except _Reject:
            return
        if frame.message_type == CALL:
            metrics.frame("out", CALLERROR, frame.action, self.actions)
            metrics.callerror("out", self.codes.generic_error)
            await self._connection.send(
                _dumps(
                    [
                        CALLERROR,
                        frame.unique_id,
                        self.codes.generic_error,
                        "Rate limit exceeded",
                        {},
                    ]
                )
            )

    async def _handle_frame_call(self, frame: Frame) -> None:
        started = perf_counter()
        try:
            response = await self._answer_call(frame)
        except CallErrorReply as reply:
            await self._send_error(
                frame.unique_id, reply.code, reply.description, reply.details, action=frame.action
            )
            metrics.call_answered(frame.action, perf_counter() - started, self.actions)
            return
        await self._send_frame([CALLRESULT, frame.unique_id, response], frame.action)
        metrics.call_answered(frame.action, perf_counter() - started, self.actions)
        self._run_after_handler(frame)

    async def _answer_call(self, frame: Frame) -> dict:
        codes = self.codes
        if frame.unique_id in self._seen_ids:
            raise CallErrorReply(
                codes.duplicate_id,
                "Message id already used on this connection",
            )
        self._seen_ids[frame.unique_id] = frame.action
        if len(self._seen_ids) > REMEMBERED_IDS:
            self._seen_ids.popitem(last=False)

        handlers = self.route_map.get(frame.action)
        if not handlers or "_on_action" not in handlers:
            if frame.action in self.actions:
                raise CallErrorReply(codes.not_supported, f"{frame.action} is not supported")
            raise CallErrorReply(codes.not_implemented, f"Unknown action {frame.action}")

        # Before Accepted: BootNotification, and what the backend asked for. Anything
        # else is refused before the schema check; what was asked for after it, so a
        # malformed message does not use up its place.
        unasked = (
            self.session.registration_status != "Accepted"
            and frame.action not in self.ALLOWED_BEFORE_ACCEPTED
        )
        if unasked and not self.admission.expects(frame.action):
            raise self._not_accepted()
        self._validate_request(frame)
        if unasked and not self.admission.admit(frame.action, frame.payload):
            raise self._not_accepted()

        kwargs = to_snake_case(frame.payload)
        handler = handlers["_on_action"]
        try:
            result = handler(**kwargs)
            if inspect.isawaitable(result):
                result = await result
        except CallErrorReply:
            raise
        except OCPPError as exc:
            raise CallErrorReply(self._map_library_code(exc.code), exc.description) from exc
        except TypeError as exc:
            # A required field the schema missed, or a field the handler does not take.
            logger.warning("%s: %s handler refused its arguments: %s", self.id, frame.action, exc)
            raise CallErrorReply(
                codes.format_violation, "Payload does not match the action"
            ) from exc
        except Exception as exc:
            logger.exception("%s: handling %s failed", self.id, frame.action)
            raise CallErrorReply(
                codes.internal_error, "Internal error while handling the request"
            ) from exc
        return self._serialize_response(frame.action, result)

    def _time(self, field: str, value: Any) -> datetime:
        """A charger's date-time field, or the version's CALLERROR (the same on every
        version: the library's validator does not check `format: date-time`)."""
        parsed = parse_ocpp_time(value) if isinstance(value, str) else None
        if parsed is None:
            raise CallErrorReply(
                self.codes.property_violation, f"{field}: not an ISO 8601 date-time"
            )
        return parsed

    def _not_accepted(self) -> CallErrorReply:
        # What is true: the station booted (or was created) and was told this status.
        status = self.session.registration_status or "no BootNotification yet"
        return CallErrorReply(self.codes.security_error, f"Station is not accepted yet: {status}")

    def _validate_request(self, frame: Frame) -> None:
        """Check a CALL's (or SEND's) payload against the version's schema."""
        if fast_valid(frame.message_type, frame.action, self._ocpp_version, frame.payload):
            return
        try:
            validator = get_validator(frame.message_type, frame.action, self._ocpp_version)
        except OSError:
            return  # No schema shipped for this action: nothing to validate against.
        errors = [e for e in validator.iter_errors(frame.payload) if not self._tolerated(frame, e)]
        if not errors:
            return
        error = best_match(errors)
        raise CallErrorReply(self._code_for_schema_error(error), _describe(error))

    def _tolerated(self, frame: Frame, error: SchemaError) -> bool:
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "maxLength":
            if path in self.COSMETIC_FIELDS.get(frame.action, frozenset()):
                logger.info("%s: accepted over-long %s.%s", self.id, frame.action, path)
                return True
            if self.session.lenient:
                logger.info(
                    "%s: lenient station: accepted over-long %s.%s", self.id, frame.action, path
                )
                return True
            return False
        if error.validator == "additionalProperties" and self.session.lenient:
            logger.info(
                "%s: ignored unknown fields in %s: %s", self.id, frame.action, error.message
            )
            return True
        return False

    def _code_for_schema_error(self, error: SchemaError) -> str:
        codes = self.codes
        if error.validator == "required":
            return codes.occurrence_violation
        if error.validator in {"type", "maxLength", "minLength"}:
            return codes.type_violation
        if error.validator in {"enum", "minimum", "maximum", "multipleOf", "pattern", "format"}:
            return codes.property_violation
        return codes.format_violation

    def _map_library_code(self, code: str) -> str:
        mapping = {
            "FormatViolation": self.codes.format_violation,
            "FormationViolation": self.codes.format_violation,
            "OccurenceConstraintViolation": self.codes.occurrence_violation,
            "OccurrenceConstraintViolation": self.codes.occurrence_violation,
        }
        return mapping.get(code, code)

    def _serialize_response(self, action: str, result: Any) -> dict:
        payload = result if isinstance(result, dict) else to_camel_case(result)
        if fast_valid(CALLRESULT, action, self._ocpp_version, payload):
            return payload
        try:
            validator = get_validator(CALLRESULT, action, self._ocpp_version)
        except OSError:
            return payload
        error = best_match(validator.iter_errors(payload))
        if error is not None:
            # Strict chargers drop a non-conforming answer: better an honest InternalError.
            logger.error("%s: our %s answer breaks the schema: %s", self.id, action, error.message)
            raise CallErrorReply(self.codes.internal_error, "Internal error building the answer")
        return payload

    def _run_after_handler(self, frame: Frame) -> None:
        handlers = self.route_map.get(frame.action, {})
        after = handlers.get("_after_action")
        if after is None:
            return
        try:
            result = after(**to_snake_case(frame.payload))
        except Exception:
            logger.exception("%s: after-handler of %s failed", self.id, frame.action)
            return
        if inspect.isawaitable(result):
            self.spawn(result, f"after {frame.action}")

    # ---- OCPP 2.1: CALLRESULTERROR and SEND, never answered ------------------------

    def _note_result_error(self, frame: Frame) -> None:
        """The charger could not use our answer to its CALL: logged against that CALL."""
        logger.warning(
            "%s: CALLRESULTERROR about our answer to %s %s: %s %s",
            self.id,
            self._seen_ids.get(frame.unique_id) or "an unknown CALL",
            frame.unique_id,
            frame.error_code,
            frame.error_description,
        )

    async def _handle_send(self, frame: Frame) -> None:
        """An unconfirmed message: its `@on_send` handler runs, if there is one.

        Without a handler, or from a station not Accepted, or not matching its schema, it
        is dropped (the message log keeps it). Nothing is ever sent back.
        """
        if self.session.registration_status != "Accepted":
            logger.warning("%s: dropped SEND %s: not accepted yet", self.id, frame.action)
            return
        name = self._send_handlers.get(frame.action)
        if name is None:
            logger.info("%s: no handler for SEND %s: dropped", self.id, frame.action)
            return
        try:
            self._validate_request(frame)
            result = getattr(self, name)(**to_snake_case(frame.payload))
            if inspect.isawaitable(result):
                await result
        except CallErrorReply as reply:
            logger.warning(
                "%s: dropped SEND %s: %s %s", self.id, frame.action, reply.code, reply.description
            )
        except Exception:
            logger.exception("%s: handling SEND %s failed", self.id, frame.action)

    # ---- outgoing -----------------------------------------------------------------

    async def send_call(self, action: str, payload: dict, *, timeout: float | None = None) -> dict:
        """Send a CALL and return the charger's CALLRESULT payload.

        One outstanding CALL per connection (OCPP-J): later calls wait for the lock.
        Raises CallErrorReceived, asyncio.TimeoutError, or ValueError for a payload
        that breaks the schema (never sent).
        """
        if not fast_valid(CALL, action, self._ocpp_version, payload):
            validator = get_validator(CALL, action, self._ocpp_version)
            error = best_match(validator.iter_errors(payload))
            if error is not None:
                raise ValueError(f"Invalid {action} payload: {_describe(error)}")
        timeout = self._response_timeout if timeout is None else timeout
        async with self._call_lock:
            unique_id = str(uuid.uuid4())
            future = asyncio.get_running_loop().create_future()
            self._pending[unique_id] = (action, future)
            # What it asks the charger to send (a trigger's messages, a report's parts)
            # is admitted even before Accepted.
            self.admission.expect(unique_id, action, payload, answer_within=timeout)
            try:
                await self._send_frame([CALL, unique_id, action, payload], action)
                return await asyncio.wait_for(future, timeout)
            finally:
                self._pending.pop(unique_id, None)
                # No answer (timeout, disconnect): nothing of it is expected any more.
                self.admission.answered(unique_id, None)

    def _resolve_pending(self, frame: Frame) -> None:
        pending = self._pending.get(frame.unique_id)
        if pending is None:
            logger.warning("%s: answer to unknown message id %s ignored", self.id, frame.unique_id)
            return
        # At once, before the next frame: the answer decides what the charger may send.
        self.admission.answered(frame.unique_id, frame.payload)
        action, future = pending
        if future.done():
            return
        if frame.message_type == CALLRESULT:
            if not isinstance(frame.payload, dict):
                future.set_exception(ValueError("CALLRESULT payload is not an object"))
            else:
                future.set_result(frame.payload)
        else:
            future.set_exception(
                CallErrorReceived(frame.error_code, frame.error_description, frame.error_details)
            )

    def pending_action(self, unique_id: str) -> str:
        pending = self._pending.get(unique_id)
        return pending[0] if pending else ""

    # ---- sending and logging ------------------------------------------------------

    async def _send_error(
        self,
        unique_id: str,
        code: str,
        description: str,
        details: dict | None = None,
        *,
        action: str = "",
    ) -> None:
        # `action`: the CALL this answers, so the station log shows what was refused.
        await self._send_frame(
            [CALLERROR, unique_id, code, description[:255], details or {}], action
        )

    async def _send_frame(self, frame: list, action: str) -> None:
        text = _dumps(frame)
        payload = (
            frame[3]
            if frame[0] == CALL
            else frame[2]
            if frame[0] == CALLRESULT
            else {
                "errorCode": frame[2],
                "errorDescription": frame[3],
                "errorDetails": frame[4],
            }
        )
        self.log.record(
            station_id=self.session.station_id,
            cbid=self.session.cbid,
            direction="out",
            message_type=frame[0],
            action=action,
            unique_id=frame[1],
            payload=payload,
        )
        metrics.frame("out", frame[0], action, self.actions)
        if frame[0] == CALLERROR:
            metrics.callerror("out", frame[2])
        await self._connection.send(text)

    def _log_in(self, frame: Frame | None, raw: str = "") -> None:
        if frame is None:
            metrics.frame("in", None, "", self.actions)
            self.log.record(
                station_id=self.session.station_id,
                cbid=self.session.cbid,
                direction="in",
                message_type=None,
                raw=raw,
            )
            return
        if frame.message_type in (CALLERROR, CALLRESULTERROR):
            payload = {
                "errorCode": frame.error_code,
                "errorDescription": frame.error_description,
                "errorDetails": frame.error_details,
            }
            metrics.callerror("in", frame.error_code)
            # A CALLERROR answers our CALL; a CALLRESULTERROR is about our answer to theirs.
            action = (
                self.pending_action(frame.unique_id)
                if frame.message_type == CALLERROR
                else self._seen_ids.get(frame.unique_id, "")
            )
        elif frame.message_type == CALLRESULT:
            payload, action = frame.payload, self.pending_action(frame.unique_id)
        else:
            payload, action = frame.payload, frame.action
        metrics.frame("in", frame.message_type, action, self.actions)
        self.log.record(
            station_id=self.session.station_id,
            cbid=self.session.cbid,
            direction="in",
            message_type=frame.message_type,
            action=action,
            unique_id=frame.unique_id,
            payload=payload,
        )

    # ---- background work ----------------------------------------------------------

    def spawn(self, coro, what: str) -> asyncio.Task | None:
        """Run `coro` in the background, keeping a reference and logging its failure.

        At most `max_tasks` per connection (OCPP_MAX_TASKS_PER_CONNECTION): beyond that the
        work is dropped (None returned, the coroutine closed) instead of piling up behind
        a charger that does not answer.
        """
        if len(self._tasks) >= self.max_tasks:
            logger.error(
                "%s: %d background tasks already; dropped %s", self.id, self.max_tasks, what
            )
            if inspect.iscoroutine(coro):
                coro.close()
            return None
        return self._tasks.spawn(coro, f"{self.id}: {what}")

    def close(self) -> None:
        """The socket is gone: fail pending calls and stop background work."""
        for _action, future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("Station disconnected"))
        self._tasks.cancel_all()


def _describe(error: SchemaError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return f"{path}: {error.message}"[:255] if path else error.message[:255]
