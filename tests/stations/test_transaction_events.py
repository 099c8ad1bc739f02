"""OCPP 2.x TransactionEvent and idToken services, without a websocket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stations.models import IdTag, MeterValue, Transaction
from stations.services.meter_values import MeterSample
from stations.services.transaction_events import (
    InvalidTimestamp,
    TransactionEventData,
    id_token_authorize,
    meter_samples_from_ocpp,
    transaction_event_record,
)
from stations.services.transaction_timeline import transactions_energy_so_far
from stations.services.transactions import transaction_start
from tests.factories import make_station

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def station(cpo_a):
    return make_station("CP-TE", cpo=cpo_a, ocpp_version="2.0.1")


def energy(value: str, minutes: int = 0, unit: str = "Wh", **extra) -> MeterSample:
    return MeterSample(timestamp=T0 + timedelta(minutes=minutes), value=value, unit=unit, **extra)


def event(event_type: str, seq_no: int, tx_id: str = "TX-1", **fields) -> TransactionEventData:
    return TransactionEventData(
        event_type=event_type,
        timestamp=T0 + timedelta(minutes=seq_no),
        seq_no=seq_no,
        transaction_id=tx_id,
        **fields,
    )


def record(station, data: TransactionEventData):
    return transaction_event_record(station_id=station.pk, event=data)


def test_started_creates_a_transaction_with_the_chargers_string_id(station):
    result = record(
        station, event("Started", 0, evse_id=1, connector_id=2, samples=[energy("500")])
    )
    tx = Transaction.objects.get()
    assert result.transaction == tx
    assert result.duplicate is False
    assert tx.charger_transaction_id == "TX-1"
    assert (tx.connector.evse_id, tx.connector.connector_id) == (1, 2)
    assert (tx.state, tx.start_time, tx.meter_start) == ("active", T0, 500)


def test_a_resent_event_is_a_duplicate_and_changes_nothing(station):
    record(station, event("Started", 0, evse_id=1, samples=[energy("500")]))
    record(station, event("Updated", 1, samples=[energy("900", 1)]))

    again = record(station, event("Updated", 1, samples=[energy("900", 1)], offline=True))
    older = record(station, event("Started", 0, samples=[energy("500")]))

    assert again.duplicate and older.duplicate
    tx = Transaction.objects.get()
    assert tx.offline is False
    assert tx.last_seq_no == 1
    assert MeterValue.objects.count() == 2


def test_energy_so_far_and_meter_stop_come_from_the_energy_register(station):
    record(station, event("Started", 0, evse_id=1, samples=[energy("1.5", unit="kWh")]))
    record(
        station,
        event(
            "Updated",
            1,
            samples=[
                energy("2.5", 1, unit="kWh"),
                # A per-phase reading and another measurand say nothing about the total.
                energy("99999", 1, phase="L1"),
                MeterSample(timestamp=T0, value="7400", measurand="Power.Active.Import", unit="W"),
            ],
        ),
    )
    running = Transaction.objects.get()
    assert running.energy_wh is None  # settled when the session ends
    assert transactions_energy_so_far([running]) == {running.pk: 1000}
    record(station, event("Ended", 2, stopped_reason="EVDisconnected", samples=[energy("4000", 2)]))
    tx = Transaction.objects.get()
    assert (tx.meter_start, tx.meter_stop, tx.energy_wh) == (1500, 4000, 2500)
    assert (tx.state, tx.stop_reason, tx.stop_time) == (
        "ended",
        "EVDisconnected",
        T0 + timedelta(minutes=2),
    )


def test_the_offline_flag_sticks(station):
    record(station, event("Started", 0, evse_id=1, offline=True))
    record(station, event("Updated", 1))
    assert Transaction.objects.get().offline is True


def test_an_event_after_the_end_does_not_reopen_or_move_the_end(station):
    record(station, event("Started", 0, evse_id=1))
    record(station, event("Ended", 1))
    record(station, event("Updated", 2))
    tx = Transaction.objects.get()
    assert (tx.state, tx.stop_time, tx.last_seq_no) == ("ended", T0 + timedelta(minutes=1), 2)


def test_updated_for_an_unknown_transaction_creates_it(station):
    record(station, event("Updated", 3, "LATE", evse_id=1))
    tx = Transaction.objects.get()
    assert (tx.charger_transaction_id, tx.state, tx.orphan_stop) == ("LATE", "active", False)


def test_ended_for_an_unknown_transaction_is_an_orphan_stop(station):
    record(station, event("Ended", 3, "LOST"))
    tx = Transaction.objects.get()
    assert (tx.state, tx.orphan_stop, tx.stop_reason) == ("ended", True, "Local")


def test_the_same_transaction_id_on_two_stations_is_two_transactions(station, cpo_a):
    other = make_station("CP-OTHER", cpo=cpo_a, ocpp_version="2.0.1")
    record(station, event("Started", 0, "SAME", evse_id=1))
    record(other, event("Started", 0, "SAME", evse_id=1))
    assert Transaction.objects.filter(charger_transaction_id="SAME").count() == 2


def test_id_token_of_the_event_is_judged_and_kept(station, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="CARD-1")
    result = record(
        station, event("Started", 0, evse_id=1, id_token="CARD-1", id_token_type="ISO14443")
    )
    assert result.id_token_info.status == "Accepted"
    ended = record(station, event("Ended", 1, id_token="CARD-1", id_token_type="ISO14443"))
    tx = Transaction.objects.get()
    assert (tx.id_tag, tx.id_tag_status, tx.stop_id_tag) == ("CARD-1", "Accepted", "CARD-1")
    assert ended.id_token_info.status == "Accepted"


def test_event_without_id_token_has_no_verdict(station):
    assert record(station, event("Started", 0, evse_id=1)).id_token_info is None


def test_transactions_of_both_versions_land_in_one_model(station, cpo_a):
    old = make_station("CP-16", cpo=cpo_a, ocpp_version="1.6")
    tx16, _info = transaction_start(
        station_id=old.pk, connector_id=1, id_tag="CARD", meter_start=0, timestamp=T0
    )
    record(station, event("Started", 0, evse_id=1))
    assert sorted(tx.ocpp_id for tx in Transaction.objects.all()) == sorted([str(tx16.pk), "TX-1"])


# ---- idToken -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("registered_type", "presented_type", "expected"),
    [
        ("ISO14443", "ISO14443", "Accepted"),
        ("ISO14443", "eMAID", "Invalid"),
        ("", "eMAID", "Accepted"),  # registered without a type: any type matches
        ("Central", "Central", "Accepted"),
        # A remote start sends the card's number as a Central token; the session follows.
        ("ISO14443", "Central", "Accepted"),
        ("Central", "ISO14443", "Invalid"),
    ],
)
def test_id_token_type_must_match_the_registered_type(
    station, cpo_a, registered_type, presented_type, expected
):
    IdTag.objects.create(cpo=cpo_a, tag="TOKEN", token_type=registered_type)
    info = id_token_authorize(station_id=station.pk, id_token="TOKEN", token_type=presented_type)
    assert info.status == expected


def test_blocked_token_stays_blocked_whatever_its_type(station, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="TOKEN", status="Blocked")
    info = id_token_authorize(station_id=station.pk, id_token="TOKEN", token_type="ISO14443")
    assert info.status == "Blocked"


def test_no_authorization_token_needs_free_usage(station):
    assert (
        id_token_authorize(station_id=station.pk, id_token="", token_type="NoAuthorization").status
        == "Invalid"
    )
    station.free_usage = True
    station.save()
    assert (
        id_token_authorize(station_id=station.pk, id_token="", token_type="NoAuthorization").status
        == "Accepted"
    )


def test_a_21_token_longer_than_any_id_tag_is_invalid(station, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="x" * 36)
    info = id_token_authorize(station_id=station.pk, id_token="x" * 37, token_type="Local")
    assert info.status == "Invalid"


# ---- meter values from the wire ----------------------------------------------------


def test_meter_samples_keep_what_was_sent_and_store_the_normalised_value(station):
    samples = meter_samples_from_ocpp(
        [
            {
                "timestamp": "2026-03-01T10:00:00Z",
                "sampled_value": [
                    {"value": 12.5, "unit_of_measure": {"unit": "kWh", "multiplier": 3}},
                    {
                        "value": 7,
                        "measurand": "Current.Import",
                        "phase": "L2",
                        "unit_of_measure": {"unit": "A", "multiplier": -1},
                    },
                    {"value": 42},
                    {"value": 5, "unit_of_measure": {"multiplier": 10**6}},
                ],
            },
        ]
    )
    assert [(s.value, s.unit, s.multiplier, s.measurand, s.context) for s in samples] == [
        ("12.5", "kWh", 3, "", ""),
        ("7", "A", -1, "Current.Import", ""),
        ("42", "", 0, "", ""),
        ("5", "", 10**6, "", ""),
    ]
    assert samples[0].timestamp == T0
    record(station, event("Started", 0, evse_id=1, samples=samples))
    stored = [
        (v.value, v.unit, v.multiplier, v.normalized_value, v.normalized_unit)
        + (v.context, v.location)
        for v in MeterValue.objects.order_by("id")
    ]
    assert stored == [
        ("12.5", "kWh", 3, 12_500_000.0, "Wh", "Sample.Periodic", "Outlet"),
        ("7", "A", -1, pytest.approx(0.7), "A", "Sample.Periodic", "Outlet"),
        ("42", "Wh", 0, 42.0, "Wh", "Sample.Periodic", "Outlet"),
        # A wild multiplier is not applied (and does not fit the column either).
        ("5", "Wh", 0, None, "Wh", "Sample.Periodic", "Outlet"),
    ]


def test_a_meter_value_without_a_readable_time_is_refused_whole():
    with pytest.raises(InvalidTimestamp) as refused:
        meter_samples_from_ocpp(
            [
                {"timestamp": "2026-03-01T10:00:00Z", "sampled_value": [{"value": 1}]},
                {"timestamp": "not a time", "sampled_value": [{"value": 1}]},
            ]
        )
    assert refused.value.field == "meterValue.1.timestamp"


def test_a_nonsense_energy_reading_is_stored_but_not_used_as_the_meter(station):
    record(station, event("Started", 0, evse_id=1, samples=[energy("1" + "0" * 30)]))
    tx = Transaction.objects.get()
    assert tx.meter_start is None
    assert MeterValue.objects.get().value == "1" + "0" * 30
