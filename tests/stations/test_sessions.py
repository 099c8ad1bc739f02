"""Sessions you can bill (issue 21): every case, table-driven, on OCPP 1.6 and 2.x.

The 2.x tables replay one session's events in every order (and every order with every
event resent) and expect the same row; the 1.6 tables do the same for what 1.6 can
reorder or repeat. Both versions share the cases for resets, orphans, superseding,
signed values, defaults and implausible times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from stations.models import IdTag, MeterValue, Transaction, TransactionEvent
from stations.services.charging import StatusReport, charging_data_store
from stations.services.meter_values import MeterReading, MeterSample
from stations.services.transaction_events import TransactionEventData, transaction_event_record
from stations.services.transaction_timeline import transaction_timeline
from stations.services.transactions import transaction_start, transaction_stop
from tests.factories import make_station

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
# An OCMF record longer than the 2,500 characters a value column holds.
OCMF = 'OCMF|{"FV":"1.0","GI":"SIM","RD":[{"TM":"2026-03-01T10:00:00,000+0000 S"}]}' + "x" * 5000
SIGNATURE = '|{"SA":"ECDSA-secp256r1-SHA256","SD":"' + "ab" * 40 + '"}'


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def station(cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="CARD-1")
    return make_station("CP-S", cpo=cpo_a, ocpp_version="2.0.1", first_connected_at=at(-60))


@pytest.fixture
def station16(cpo_a):
    IdTag.objects.get_or_create(cpo=cpo_a, tag="CARD-1")
    return make_station("CP-S16", cpo=cpo_a, ocpp_version="1.6", first_connected_at=at(-60))


def row(tx: Transaction) -> dict:
    tx.refresh_from_db()
    return {
        "state": tx.state,
        "start_time": tx.start_time,
        "stop_time": tx.stop_time,
        "meter_start": tx.meter_start,
        "meter_stop": tx.meter_stop,
        "energy_wh": tx.energy_wh,
        "id_tag": tx.id_tag,
        "stop_id_tag": tx.stop_id_tag,
        "stop_reason": tx.stop_reason,
        "incomplete": tx.incomplete,
        "orphan_stop": tx.orphan_stop,
        "meter_reset": tx.meter_reset,
        "superseded": tx.superseded,
        "suspicious_timestamp": tx.suspicious_timestamp,
    }


# ---- OCPP 2.x: one session, its events in any order -------------------------------------


@dataclass
class Ev:
    """One 2.x TransactionEvent of a test session."""

    kind: str
    seq: int
    minute: float
    wh: float | None = None
    context: str = ""
    token: str = ""
    state: str = ""
    evse: int | None = None
    tx: str = "TX-1"
    extra: dict = field(default_factory=dict)

    def data(self) -> TransactionEventData:
        samples = []
        if self.wh is not None:
            samples.append(
                MeterSample(timestamp=at(self.minute), value=str(self.wh), context=self.context)
            )
        fields = {
            "trigger_reason": "Authorized" if self.token else "MeterValuePeriodic",
            "charging_state": self.state,
            "stopped_reason": "EVDisconnected" if self.kind == "Ended" else "",
            "evse_id": self.evse,
            "connector_id": 1 if self.evse else None,
            "id_token": self.token,
            "id_token_type": "ISO14443" if self.token else "",
            "samples": samples,
        }
        return TransactionEventData(
            event_type=self.kind,
            timestamp=at(self.minute),
            seq_no=self.seq,
            transaction_id=self.tx,
            **(fields | self.extra),
        )


def send(station, *events: Ev, received_at: datetime | None = None):
    return [
        transaction_event_record(station_id=station.pk, event=e.data(), received_at=received_at)
        for e in events
    ]


SESSION = [
    Ev("Started", 0, 0, 20000, "Transaction.Begin", token="CARD-1", state="EVConnected", evse=1),
    Ev("Updated", 1, 10, 23000, state="Charging"),
    Ev("Updated", 2, 20, 26000, state="SuspendedEV"),
    Ev("Ended", 3, 30, 27000, "Transaction.End", token="CARD-1", state="EVConnected"),
]
SESSION_ROW = {
    "state": "ended",
    "start_time": at(0),
    "stop_time": at(30),
    "meter_start": 20000,
    "meter_stop": 27000,
    "energy_wh": 7000,
    "id_tag": "CARD-1",
    "stop_id_tag": "CARD-1",
    "stop_reason": "EVDisconnected",
    "incomplete": False,
    "orphan_stop": False,
    "meter_reset": False,
    "superseded": False,
    "suspicious_timestamp": False,
}
ORDERS = list(permutations(range(len(SESSION))))


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "".join(map(str, o)))
def test_v2_every_arrival_order_gives_the_same_session(station, order):
    results = send(station, *(SESSION[i] for i in order))
    assert not any(r.duplicate for r in results)
    tx = Transaction.objects.get()
    assert row(tx) == SESSION_ROW
    assert (tx.first_seq_no, tx.last_seq_no, tx.seq_no_count) == (0, 3, 4)
    assert tx.events.count() == 4 and tx.meter_values.count() == 4
    timeline = transaction_timeline(transaction_id=tx.pk)
    assert [(s.state, s.start, s.end) for s in timeline.states] == [
        ("EVConnected", at(0), at(10)),
        ("Charging", at(10), at(20)),
        ("SuspendedEV", at(20), at(30)),
    ]
    assert [s.energy_wh for s in timeline.samples] == [20000, 23000, 26000, 27000]


@pytest.mark.parametrize("order", ORDERS[::5], ids=lambda o: "".join(map(str, o)))
def test_v2_every_resent_event_is_a_duplicate_and_changes_nothing(station, order):
    first = send(station, *(SESSION[i] for i in order))
    again = send(station, *(SESSION[i] for i in reversed(order)))
    assert not any(r.duplicate for r in first)
    assert all(r.duplicate for r in again)
    tx = Transaction.objects.get()
    assert row(tx) == SESSION_ROW
    assert (tx.seq_no_count, tx.events.count(), tx.meter_values.count()) == (4, 4, 4)


def test_v2_a_duplicate_is_the_same_seq_no_nothing_else(station):
    send(station, SESSION[0])
    # The same seqNo with other content is still the copy the charger resent…
    (copy,) = send(station, Ev("Started", 0, 5, 99999, token="CARD-1", evse=1))
    # …while a lower seqNo never seen before is news, however late.
    (late,) = send(station, Ev("Updated", 1, 10, 23000))
    assert copy.duplicate and not late.duplicate
    tx = Transaction.objects.get()
    assert (tx.start_time, tx.meter_start) == (at(0), 20000)


NO_START_READING = [
    Ev("Started", 0, 0, token="CARD-1", evse=1),
    Ev("Updated", 1, 10, 20000),
    Ev("Updated", 2, 20, 27000),
    Ev("Ended", 3, 30),
]


@pytest.mark.parametrize("order", ORDERS[::3], ids=lambda o: "".join(map(str, o)))
def test_v2_energy_comes_from_whatever_events_carried_the_readings(station, order):
    send(station, *(NO_START_READING[i] for i in order))
    assert row(Transaction.objects.get()) | {"stop_id_tag": "CARD-1"} == SESSION_ROW | {
        "stop_reason": "EVDisconnected"
    }


@pytest.mark.parametrize(
    ("name", "events", "expected"),
    [
        (
            "offline session: only the Ended, with Begin and End readings",
            [
                Ev(
                    "Ended",
                    3,
                    30,
                    token="CARD-1",
                    extra={
                        "samples": [
                            MeterSample(at(0), "1000", context="Transaction.Begin"),
                            MeterSample(at(30), "4000", context="Transaction.End"),
                        ]
                    },
                )
            ],
            # The Ended's token stops the session: it is not its start token.
            {"energy_wh": 3000, "meter_start": 1000, "meter_stop": 4000, "id_tag": ""}
            | {"stop_id_tag": "CARD-1", "orphan_stop": True, "incomplete": True}
            | {"start_time": at(30)},
        ),
        (
            "Started and Ended only: the events between are missing",
            [SESSION[0], SESSION[3]],
            {"energy_wh": 7000, "incomplete": True, "orphan_stop": False},
        ),
        (
            "no Started: incomplete, started no later than its earliest event",
            [SESSION[2], SESSION[1], SESSION[3]],
            {"start_time": at(10), "incomplete": True, "orphan_stop": True, "id_tag": ""}
            | {"meter_start": 23000, "energy_wh": 4000},
        ),
        (
            "running, every event so far",
            SESSION[:3],
            {"state": "active", "incomplete": False, "energy_wh": None, "meter_start": 20000},
        ),
        (
            "running with a gap",
            [SESSION[0], SESSION[2]],
            {"state": "active", "incomplete": True},
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_v2_missing_events(station, name, events, expected):
    send(station, *events)
    got = row(Transaction.objects.get())
    assert {k: got[k] for k in expected} == expected


def test_v2_missing_events_arriving_later_complete_the_session(station):
    send(station, SESSION[3], SESSION[0])
    assert row(Transaction.objects.get())["incomplete"] is True
    send(station, SESSION[2], SESSION[1])
    assert row(Transaction.objects.get()) == SESSION_ROW


def test_v2_the_started_token_wins_over_an_earlier_authorization(station, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="CARD-2")
    send(station, Ev("Updated", 1, 10, token="CARD-2"), Ev("Started", 0, 0, token="CARD-1"))
    tx = Transaction.objects.get()
    assert (tx.id_tag, tx.id_tag_status, tx.start_time) == ("CARD-1", "Accepted", at(0))


# ---- resets: the register going backwards, on both versions -----------------------------

RESETS = [
    # (readings in time order: (minute, Wh)), energy, meter start, meter stop
    pytest.param([(0, 50000), (30, 400)], 0, 50000, 400, id="start-50000-stop-400"),
    pytest.param(
        [(0, 50000), (10, 53000), (20, 100), (30, 400)], 3300, 50000, 400, id="reset-mid-session"
    ),
    pytest.param([(0, 1000), (10, 900), (30, 3000)], 2100, 1000, 3000, id="one-step-back"),
]


@pytest.mark.parametrize(("readings", "energy", "start", "stop"), RESETS)
@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_v2_a_backwards_register_is_flagged_and_counts_its_forward_steps(
    station, readings, energy, start, stop, reverse
):
    last = len(readings) - 1
    events = [
        Ev(
            "Started" if i == 0 else "Ended" if i == last else "Updated",
            i,
            minute,
            wh,
            "Transaction.Begin" if i == 0 else "Transaction.End" if i == last else "",
            evse=1 if i == 0 else None,
        )
        for i, (minute, wh) in enumerate(readings)
    ]
    send(station, *(reversed(events) if reverse else events))
    got = row(Transaction.objects.get())
    assert (got["energy_wh"], got["meter_start"], got["meter_stop"], got["meter_reset"]) == (
        energy,
        start,
        stop,
        True,
    )


@pytest.mark.parametrize(("readings", "energy", "start", "stop"), RESETS)
def test_v16_a_backwards_register_is_flagged_and_counts_its_forward_steps(
    station16, readings, energy, start, stop
):
    (first_minute, first), *middle, (last_minute, last) = readings
    tx = start16(station16, meter=first, minute=first_minute)
    for minute, wh in middle:
        meter16(station16, tx, wh, minute)
    stop16(station16, tx, meter=last, minute=last_minute)
    got = row(tx)
    assert (got["energy_wh"], got["meter_start"], got["meter_stop"], got["meter_reset"]) == (
        energy,
        start,
        stop,
        True,
    )


# ---- OCPP 1.6 ---------------------------------------------------------------------------


def start16(station, *, meter: int = 20000, minute: float = 0, connector: int = 1, **extra):
    tx, _info = transaction_start(
        station_id=station.pk,
        connector_id=connector,
        id_tag="CARD-1",
        meter_start=meter,
        timestamp=at(minute),
        **extra,
    )
    return tx


def meter16(station, tx, wh: float, minute: float, **sample) -> None:
    charging_data_store(
        [
            MeterReading(
                station.pk,
                [MeterSample(at(minute), str(wh), **sample)],
                transaction_id=tx.pk,
                connector_id=1,
            )
        ]
    )


def stop16(station, tx_or_id, *, meter: int = 27000, minute: float = 30, **extra):
    transaction_id = tx_or_id if isinstance(tx_or_id, int) else tx_or_id.pk
    return transaction_stop(
        station_id=station.pk,
        transaction_id=transaction_id,
        meter_stop=meter,
        timestamp=at(minute),
        id_tag="CARD-1",
        **extra,
    )


def status16(station, status: str, minute: float, connector: int = 1) -> None:
    charging_data_store([StatusReport(station.pk, connector, status, timestamp=at(minute))])


V16_ROW = SESSION_ROW | {"stop_reason": "Local"}


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(["start", "meter", "status", "stop"], id="in-order"),
        pytest.param(["start", "start", "meter", "stop", "stop"], id="start-and-stop-resent"),
        pytest.param(["start", "meter", "meter", "stop"], id="meter-values-resent"),
        pytest.param(["start", "status", "status", "stop", "late-status"], id="statuses"),
    ],
)
def test_v16_a_session_with_its_repeats(station16, steps):
    tx = None
    for step in steps:
        if step == "start":
            again = start16(station16)
            assert tx is None or again.pk == tx.pk
            tx = again
        elif step == "meter":
            meter16(station16, tx, 23000, 10)
        elif step == "status":
            status16(station16, "Charging", 5)
        elif step == "late-status":
            status16(station16, "Available", 45)
        else:
            stop16(station16, tx)
    assert row(tx) == V16_ROW
    assert Transaction.objects.count() == 1
    kinds = list(tx.events.values_list("kind", flat=True))
    assert kinds.count("Started") == 1 and kinds.count("Ended") == 1


def test_v16_every_stop_is_a_session(station16):
    # The 1.6 errata: a stop whose start never got an id says transactionId -1.
    stop16(station16, -1, meter=1000, minute=10)
    stop16(station16, -1, meter=2000, minute=20)
    stop16(station16, -1, meter=2000, minute=20)  # the same stop, resent: merged
    stop16(station16, 424242, meter=3000, minute=30)
    orphans = Transaction.objects.order_by("stop_time")
    assert [(t.ocpp_id, t.meter_stop, t.orphan_stop, t.incomplete) for t in orphans] == [
        ("-1", 1000, True, True),
        ("-1", 2000, True, True),
        ("424242", 3000, True, True),
    ]
    assert all(t.start_time is None and t.stop_reason == "Local" for t in orphans)


def test_v16_an_orphan_stop_takes_its_energy_from_its_transaction_data(station16):
    stop16(
        station16,
        -1,
        meter=4000,
        samples=[MeterSample(at(0), "1000", context="Transaction.Begin")],
    )
    got = row(Transaction.objects.get())
    assert (got["meter_start"], got["meter_stop"], got["energy_wh"]) == (1000, 4000, 3000)


def test_v16_status_changes_during_the_session_are_its_history(station16):
    status16(station16, "Preparing", -1)
    tx = start16(station16)
    status16(station16, "Charging", 1)
    status16(station16, "SuspendedEV", 10)
    status16(station16, "Charging", 12)
    meter16(station16, tx, 25000, 20)
    stop16(station16, tx)
    status16(station16, "Finishing", 30)  # at the stop: still the session's
    status16(station16, "Available", 31)  # after it: not
    other = make_station("CP-OTHER", cpo=station16.cpo, ocpp_version="1.6")
    status16(other, "Faulted", 5)  # another station's connector 1
    history = list(tx.events.values_list("kind", "connector_status", "charging_state"))
    assert history == [
        ("Started", "Preparing", "EVConnected"),
        ("Status", "Charging", "Charging"),
        ("Status", "SuspendedEV", "SuspendedEV"),
        ("Status", "Charging", "Charging"),
        ("Ended", "", ""),
        ("Status", "Finishing", "EVConnected"),
    ]
    timeline = transaction_timeline(transaction_id=tx.pk)
    assert [(s.state, s.start, s.end) for s in timeline.states] == [
        ("EVConnected", at(0), at(1)),
        ("Charging", at(1), at(10)),
        ("SuspendedEV", at(10), at(12)),
        ("Charging", at(12), at(30)),
    ]
    assert timeline.charging_seconds() == 27 * 60
    assert timeline.idle_seconds() == 3 * 60
    # meterStart and meterStop are samples of the timeline too.
    assert [(s.timestamp, s.energy_wh) for s in timeline.samples] == [
        (at(0), 20000),
        (at(20), 25000),
        (at(30), 27000),
    ]


def test_v16_a_replayed_status_joins_the_session_it_happened_in(station16):
    tx = start16(station16)
    stop16(station16, tx)
    # After a reconnect, the charger replays a status from during the session.
    status16(station16, "SuspendedEVSE", 15)
    assert tx.events.filter(kind="Status", connector_status="SuspendedEVSE").exists()


# ---- superseding, both versions ----------------------------------------------------------


def test_v16_a_new_start_on_the_connector_supersedes_the_open_session(station16):
    old = start16(station16, meter=1000)
    meter16(station16, old, 1800, 5)
    new = start16(station16, meter=2000, minute=10)
    got = row(old)
    assert (got["state"], got["superseded"], got["incomplete"]) == ("ended", True, True)
    assert (got["stop_time"], got["meter_stop"], got["energy_wh"]) == (at(10), 1800, 800)
    old.refresh_from_db()
    assert old.superseded_by_id == new.pk
    assert old.events.filter(kind="Superseded").count() == 1
    assert row(new)["state"] == "active"
    # Another connector's session is left alone.
    third = start16(station16, connector=2, minute=11)
    assert row(third)["state"] == "active" and row(new)["state"] == "active"
    # The old session's own stop, late, replaces what the backend assumed.
    stop16(station16, old, meter=1900, minute=9)
    got = row(old)
    assert (got["superseded"], got["incomplete"], got["stop_time"], got["energy_wh"]) == (
        False,
        False,
        at(9),
        900,
    )


def test_v2_a_new_started_on_the_evse_supersedes_the_open_session(station):
    send(station, Ev("Started", 0, 0, 1000, "Transaction.Begin", evse=1, tx="OLD"))
    send(station, Ev("Updated", 1, 5, 1800, tx="OLD"))
    send(station, Ev("Started", 0, 10, 2000, "Transaction.Begin", evse=1, tx="NEW"))
    old = Transaction.objects.get(charger_transaction_id="OLD")
    got = row(old)
    assert (got["state"], got["superseded"], got["stop_time"], got["energy_wh"]) == (
        "ended",
        True,
        at(10),
        800,
    )
    assert old.superseded_by.charger_transaction_id == "NEW"
    send(station, Ev("Ended", 2, 9, 1900, "Transaction.End", tx="OLD"))
    got = row(old)
    assert (got["superseded"], got["incomplete"], got["stop_time"], got["energy_wh"]) == (
        False,
        False,
        at(9),
        900,
    )


def test_v2_a_late_started_of_an_older_session_is_superseded_at_once(station):
    send(station, Ev("Started", 0, 10, 2000, evse=1, tx="NEW"))
    send(station, Ev("Started", 0, 0, 1000, evse=1, tx="OLD"))
    old = Transaction.objects.get(charger_transaction_id="OLD")
    assert (old.state, old.superseded, old.stop_time) == ("ended", True, at(10))
    assert Transaction.objects.get(charger_transaction_id="NEW").state == "active"


def test_v2_sessions_of_two_evses_do_not_supersede_each_other(station):
    send(station, Ev("Started", 0, 0, evse=1, tx="A"), Ev("Started", 0, 5, evse=2, tx="B"))
    assert set(Transaction.objects.values_list("state", flat=True)) == {"active"}


# ---- signed values, both versions --------------------------------------------------------


def test_v2_signed_meter_values_are_kept_verbatim(station):
    signed = MeterSample(
        at(0),
        "20000",
        context="Transaction.Begin",
        signed_data=OCMF + SIGNATURE,
        signing_method="ECDSA-secp256r1-SHA256",
        encoding_method="OCMF",
        public_key="04" + "cd" * 1500,
    )
    send(station, Ev("Started", 0, 0, evse=1, extra={"samples": [signed]}))
    stored = MeterValue.objects.get()
    assert stored.signed_data == OCMF + SIGNATURE  # not clipped to 2,500 characters
    assert (stored.signing_method, stored.encoding_method) == ("ECDSA-secp256r1-SHA256", "OCMF")
    assert stored.public_key == "04" + "cd" * 1500
    assert (stored.value, stored.normalized_value) == ("20000", 20000.0)
    assert Transaction.objects.with_signed_values().get().has_signed_values is True


def test_v16_signed_data_is_kept_verbatim_in_meter_values_and_the_stop(station16):
    tx = start16(station16)
    meter16(station16, tx, "", 10, signed_data=OCMF + SIGNATURE)
    stop16(station16, tx, samples=[MeterSample(at(30), "", signed_data=OCMF + "END")])
    signed = list(tx.meter_values.order_by("timestamp").values_list("signed_data", "value"))
    assert signed == [(OCMF + SIGNATURE, ""), (OCMF + "END", "")]
    assert row(tx)["energy_wh"] == 7000  # a signed value alone is not a reading
    assert Transaction.objects.with_signed_values().get().has_signed_values is True


def test_a_session_without_signed_values_says_so(station16):
    start16(station16)
    assert Transaction.objects.with_signed_values().get().has_signed_values is False


# ---- one rule for defaults and units -----------------------------------------------------

DEFAULTS = [
    # (sample as sent, stored (measurand, unit, context, location, normalized, normalized unit))
    pytest.param(
        {"value": "6.25", "unit": "kWh"},
        ("Energy.Active.Import.Register", "kWh", "Sample.Periodic", "Outlet", 6250.0, "Wh"),
        id="kWh",
    ),
    pytest.param(
        {"value": "3500"},
        ("Energy.Active.Import.Register", "Wh", "Sample.Periodic", "Outlet", 3500.0, "Wh"),
        id="all-defaults",
    ),
    pytest.param(
        {"value": "11", "unit": "kW", "measurand": "Power.Active.Import"},
        ("Power.Active.Import", "kW", "Sample.Periodic", "Outlet", 11000.0, "W"),
        id="kW",
    ),
    pytest.param(
        {"value": "7400", "measurand": "Power.Active.Import"},
        ("Power.Active.Import", "W", "Sample.Periodic", "Outlet", 7400.0, "W"),
        id="power-without-unit",
    ),
    pytest.param(
        {"value": "21.5", "unit": "Celcius", "measurand": "Temperature", "location": "Body"},
        ("Temperature", "Celcius", "Sample.Periodic", "Body", 21.5, "Celsius"),
        id="1.6-celcius",
    ),
    pytest.param(
        {"value": "1.5", "unit": "KWH", "context": "Transaction.Begin", "location": "Inlet"},
        ("Energy.Active.Import.Register", "KWH", "Transaction.Begin", "Inlet", 1500.0, "Wh"),
        id="odd-case",
    ),
]


@pytest.mark.parametrize(("sent", "stored"), DEFAULTS)
@pytest.mark.parametrize("version", ["1.6", "2.x"])
def test_both_versions_store_a_sample_by_the_same_rule(station, station16, version, sent, stored):
    sample = MeterSample(timestamp=at(0), **sent)
    if version == "1.6":
        tx = start16(station16)
        stop16(station16, tx, samples=[sample])
    else:
        send(station, Ev("Started", 0, 0, evse=1, extra={"samples": [sample]}))
    value = MeterValue.objects.get()
    assert (
        value.measurand,
        value.unit,
        value.context,
        value.location,
        value.normalized_value,
        value.normalized_unit,
    ) == stored
    assert value.value == sent["value"]
    assert value.received_at is not None


def test_both_versions_default_the_stop_reason_to_local(station, station16):
    stop16(station16, start16(station16))
    send(station, Ev("Ended", 0, 0, extra={"stopped_reason": ""}))
    assert set(Transaction.objects.values_list("stop_reason", flat=True)) == {"Local"}


# ---- implausible times, both versions ----------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("minute", "suspicious"),
    [
        pytest.param(0, False, id="plausible"),
        pytest.param(56 * 365 * 24 * 60, True, id="56-years-ahead"),
        pytest.param(120 + 60, True, id="an-hour-ahead-of-receipt"),
        pytest.param(-24 * 60, True, id="before-the-first-connection"),
    ],
)
@pytest.mark.parametrize("version", ["1.6", "2.x"])
def test_both_versions_flag_an_implausible_start(station, station16, version, minute, suspicious):
    if version == "1.6":
        start16(station16, minute=minute, received_at=NOW)
    else:
        send(station, Ev("Started", 0, minute, evse=1), received_at=NOW)
    assert Transaction.objects.get().suspicious_timestamp is suspicious


@pytest.mark.parametrize("version", ["1.6", "2.x"])
def test_both_versions_flag_an_implausible_meter_value_time(station, station16, version):
    far = 56 * 365 * 24 * 60
    if version == "1.6":
        tx = start16(station16)
        meter16(station16, tx, 21000, far)
    else:
        send(station, Ev("Started", 0, 0, evse=1), Ev("Updated", 1, 10, 21000))
        send(station, Ev("Updated", 2, 11, extra={"samples": [MeterSample(at(far), "22000")]}))
    assert Transaction.objects.get().suspicious_timestamp is True


# ---- receipt times and 2.x state fields --------------------------------------------------


def test_receipt_times_are_kept(station16):
    tx = start16(station16, received_at=at(1))
    stop16(station16, tx, received_at=at(31))
    tx.refresh_from_db()
    assert (tx.start_received_at, tx.stop_received_at) == (at(1), at(31))
    assert list(tx.events.values_list("received_at", flat=True)) == [at(1), at(31)]


def test_v2_state_fields_and_21_cost_details_are_kept(station):
    cost = {"totalCost": {"currency": "EUR", "total": {"exclTax": 3.5}}, "chargingPeriods": []}
    send(
        station,
        Ev("Started", 0, 0, evse=1, extra={"remote_start_id": 77, "tariff_id": "T-1"}),
        Ev(
            "Updated",
            1,
            10,
            state="Charging",
            extra={"time_spent_charging": 540, "cost_details": cost, "offline": True},
        ),
    )
    tx = Transaction.objects.get()
    assert (tx.remote_start_id, tx.tariff_id, tx.offline) == (77, "T-1", True)
    updated = tx.events.get(seq_no=1)
    assert (updated.trigger_reason, updated.charging_state, updated.time_spent_charging) == (
        "MeterValuePeriodic",
        "Charging",
        540,
    )
    assert updated.cost_details == cost and updated.offline is True
    assert transaction_timeline(transaction_id=tx.pk).time_spent_charging == 540
    assert TransactionEvent.objects.count() == 2
