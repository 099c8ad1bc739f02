"""Fuzzing the frame path of every OCPP version: whatever arrives, the answer is
protocol-correct and the charge point keeps working."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocpp_gateway.handlers import charge_point_class
from ocpp_gateway.limits import FrameRateLimit
from ocpp_gateway.message_log import MessageLog
from ocpp_spec.identity import SUBPROTOCOLS
from stations.services.sessions import StationSession
from tests.factories import make_cpo, make_station

pytestmark = [pytest.mark.django_db(transaction=True)]

VERSIONS = sorted(set(SUBPROTOCOLS.values()))

ACTIONS = [
    "BootNotification",
    "Heartbeat",
    "StatusNotification",
    "Authorize",
    "StartTransaction",
    "StopTransaction",
    "MeterValues",
    "DataTransfer",
    "TransactionEvent",
    "NotifyReport",
    "NoSuchAction",
    "",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=60)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=20,
)
# Payloads shaped like real ones, with wrong types and odd strings in every field.
shaped_payloads = st.fixed_dictionaries(
    {},
    optional={
        "chargePointVendor": json_values,
        "chargePointModel": json_values,
        "connectorId": json_values,
        "idTag": json_values,
        "meterStart": json_values,
        "timestamp": json_values,
        "transactionId": json_values,
        "status": json_values,
        "errorCode": json_values,
        "reason": json_values,
        "chargingStation": json_values,
        "eventType": json_values,
        "seqNo": json_values,
        "meterValue": json_values,
        "vendorId": json_values,
    },
)
calls = st.tuples(
    st.just(2),
    st.text(min_size=1, max_size=36),
    st.sampled_from(ACTIONS),
    shaped_payloads | st.dictionaries(st.text(max_size=10), json_values, max_size=5),
).map(list)
frames = (
    st.text(max_size=200)
    | st.binary(max_size=100).map(lambda b: b.decode("latin-1"))
    | json_values.map(json.dumps)
    | calls.map(json.dumps)
    | st.just("[" * 5000 + "]" * 5000)
    | st.just('[2,"1","Heartbeat",{"x":' + "9" * 5000 + "}]")
    | st.just('[2,"1","Heartbeat",{"x":"\\u0000\\ud800"}]')
    | st.just('[2,"1","Heartbeat",NaN]')
)


class Wire:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, text: str) -> None:
        self.sent.append(text)


async def make_charge_point(version: str):
    def setup():
        return make_station(f"FUZZ-{version}", cpo=make_cpo(f"Fuzz {version}"))

    station = await database_sync_to_async(setup)()
    context = StationSession(
        station_id=station.pk,
        cbid=station.cbid,
        version=version,
        registration_status="Accepted",
        cpo_id=station.cpo_id,
    )
    wire = Wire()
    charge_point = charge_point_class(version)(context, wire, log=MessageLog(), call_timeout=1)
    # The fuzzer sends frames far faster than a charger may: the rate limit is tested apart.
    charge_point.rate_limit = FrameRateLimit(rate=1e6, burst=10**6, strikes=10**6)
    return charge_point, wire


def assert_protocol_correct(frame: str, replies: list[str], version: str) -> None:
    assert len(replies) <= 1, replies
    try:
        parsed = json.loads(frame)
    except (ValueError, RecursionError):
        parsed = None
    is_answer = isinstance(parsed, list) and parsed[:1] in ([3], [4])
    if not replies:
        # Only an answer to a CALL we never made may go unanswered.
        assert is_answer, f"no reply to {frame[:200]!r}"
        return
    reply = json.loads(replies[0])
    assert reply[0] in (3, 4)
    assert isinstance(reply[1], str)
    if reply[0] == 4:
        assert len(reply) == 5 and isinstance(reply[2], str) and isinstance(reply[4], dict)
        if version == "1.6":
            assert reply[2] not in {"FormatViolation", "OccurrenceConstraintViolation"}
        else:
            assert reply[2] not in {"FormationViolation", "OccurenceConstraintViolation"}
    else:
        assert isinstance(reply[2], dict)


@pytest.mark.parametrize("version", VERSIONS)
async def test_any_frame_gets_a_protocol_correct_answer(version):
    charge_point, wire = await make_charge_point(version)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(frame=frames)
    def check(frame: str) -> None:
        # Hypothesis drives sync functions: run each example on the test's event loop.
        wire.sent.clear()
        charge_point._seen_ids.clear()
        future = _loop_run(charge_point.route_message(frame))
        assert future is None
        assert_protocol_correct(frame, list(wire.sent), version)

    await database_sync_to_async(check, thread_sensitive=False)()

    wire.sent.clear()
    heartbeat = {"1.6": '[2,"hb","Heartbeat",{}]'}.get(version, '[2,"hb","Heartbeat",{}]')
    await charge_point.route_message(heartbeat)
    assert json.loads(wire.sent[0])[0] == 3


_main_loop = None


def _loop_run(coro):
    """Run `coro` on the test's event loop from Hypothesis' worker thread."""
    import asyncio

    return asyncio.run_coroutine_threadsafe(coro, _main_loop).result(timeout=30)


@pytest.fixture(autouse=True)
async def _remember_loop():
    import asyncio

    global _main_loop
    _main_loop = asyncio.get_running_loop()
    yield
