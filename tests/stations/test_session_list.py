"""Sessions as the panel lists them: states, filters, keyset pages, CSV rows; and the
closing of a session whose stop never came."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from stations.models import Command, Connector, MeterValue, Transaction, TransactionEvent
from stations.services.boot import BootInfo, station_boot, station_rebooted
from stations.services.charging import StatusReport, connector_statuses_set
from stations.services.session_list import (
    CSV_COLUMNS,
    SessionFilters,
    SessionState,
    cursor_encode,
    session_page,
    session_state_of,
    sessions_csv_rows,
    sessions_for,
)
from stations.services.transactions import transaction_start, transaction_stop
from tests.factories import make_station

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)


def _session(station, connector=None, *, start=T0, **fields) -> Transaction:
    fields.setdefault("state", Transaction.State.ENDED)
    return Transaction.objects.create(
        station=station, connector=connector, start_time=start, **fields
    )


@pytest.fixture
def station(cpo_a):
    station = make_station("CP-S1", cpo=cpo_a, name="Depot Ä")
    Connector.objects.create(station=station, connector_id=1, status="Charging")
    return station


def test_states_follow_how_a_session_ended(station, alice):
    running = _session(station, state=Transaction.State.ACTIVE)
    finished = _session(station, stop_reason="EVDisconnected", stop_time=T0)
    remote = _session(station, stop_reason="Remote", stop_time=T0)
    deauthorized = _session(station, stop_reason="DeAuthorized", stop_time=T0)
    superseded = _session(station, superseded=True, stop_time=T0)
    never = _session(station, never_stopped=True, stop_time=T0)

    states = {tx.pk: session_state_of(tx) for tx in Transaction.objects.all()}
    assert states == {
        running.pk: SessionState.RUNNING,
        finished.pk: SessionState.FINISHED,
        remote.pk: SessionState.STOPPED_BY_BACKEND,
        deauthorized.pk: SessionState.STOPPED_BY_BACKEND,
        superseded.pk: SessionState.STOPPED_BY_BACKEND,
        never.pk: SessionState.NEVER_STOPPED,
    }
    # The filter agrees with the label, state by state.
    for state in SessionState:
        found = sessions_for(user=alice, filters=SessionFilters(state=state))
        assert {tx.pk for tx in found} == {pk for pk, s in states.items() if s == state}


def test_filters_narrow_by_station_tag_and_local_dates(station, cpo_a, alice):
    other = make_station("CP-S2", cpo=cpo_a)
    helsinki = ZoneInfo("Europe/Helsinki")
    # 23:30 UTC on the 9th is already the 10th in Helsinki.
    late = _session(station, start=datetime(2026, 3, 9, 23, 30, tzinfo=UTC), id_tag="Card-1")
    early = _session(station, start=datetime(2026, 3, 9, 12, 0, tzinfo=UTC), id_tag="CARD-2")
    elsewhere = _session(other, start=T0, id_tag="card-1")

    def found(**filters):
        return {tx.pk for tx in sessions_for(user=alice, filters=SessionFilters(**filters))}

    assert found(station_id=station.pk) == {late.pk, early.pk}
    assert found(tag="card-1") == {late.pk, elsewhere.pk}
    assert found(since=date(2026, 3, 10), zone=helsinki) == {late.pk, elsewhere.pk}
    assert found(until=date(2026, 3, 9), zone=helsinki) == {early.pk}
    assert found(since=date(2026, 3, 10), zone=UTC) == {elsewhere.pk}


def test_another_cpos_sessions_are_not_listed(station, carol, alice):
    _session(station)

    assert sessions_for(user=carol).count() == 0
    assert sessions_for(user=alice).count() == 1


def test_keyset_pages_cover_every_session_once_in_order_even_with_equal_times(station, alice):
    for _ in range(7):
        _session(station, start=T0)  # ties: the id decides
    for i in range(5):
        _session(station, start=T0 - timedelta(minutes=i + 1))
    # A stop whose start never came sorts by its creation time.
    _session(station, start=None, orphan_stop=True)
    everything = list(sessions_for(user=alice).values_list("pk", flat=True))

    walked, cursor, pages = [], "", 0
    while True:
        page = session_page(sessions_for(user=alice), cursor=cursor, size=3)
        walked += [tx.pk for tx in page.sessions]
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break

    assert walked == everything
    assert len(walked) == 13
    assert pages == 5


def test_a_cursor_that_is_not_one_gives_the_first_page(station, alice):
    first = _session(station)

    assert session_page(sessions_for(user=alice), cursor="garbage!!").sessions == [first]


def test_a_deep_page_uses_the_sort_index(station, alice, django_assert_max_num_queries):
    txs = [_session(station, start=T0 - timedelta(minutes=i)) for i in range(4)]
    txs[1].sort_time = txs[1].start_time
    with django_assert_max_num_queries(2):
        page = session_page(sessions_for(user=alice), cursor=cursor_encode(txs[1]), size=10)
    assert [tx.pk for tx in page.sessions] == [txs[2].pk, txs[3].pk]


def test_csv_rows_carry_iso_times_with_offset_energy_and_peak_power(station, alice):
    tx = _session(
        station,
        station.connectors.get(),
        start=T0,
        stop_time=T0 + timedelta(minutes=90),
        energy_wh=12345,
        id_tag="CARD-1",
        stop_reason="EVDisconnected",
    )
    for watts in (7000, 11000, 9000):
        MeterValue.objects.create(
            station=station,
            transaction=tx,
            timestamp=T0,
            measurand="Power.Active.Import",
            value=str(watts),
            normalized_value=watts,
            normalized_unit="W",
        )
    helsinki = ZoneInfo("Europe/Helsinki")

    rows = list(sessions_csv_rows(sessions_for(user=alice), zone=helsinki))

    assert len(rows) == 1
    row = dict(zip([name for name, _ in CSV_COLUMNS], rows[0], strict=True))
    assert row["session"] == str(tx.pk)
    assert row["station_name"] == "Depot Ä"
    assert row["start"] == "2026-03-10T10:00:00+02:00"
    assert row["stop"] == "2026-03-10T11:30:00+02:00"
    assert row["duration_s"] == "5400"
    assert row["energy_kwh"] == "12.345"
    assert row["max_power_kw"] == "11.000"
    assert row["state"] == "finished"


# ---- sessions whose stop never arrives ----------------------------------------------


def _started(station, at=T0) -> Transaction:
    tx, _ = transaction_start(
        station_id=station.pk, connector_id=1, id_tag="CARD-1", meter_start=1000, timestamp=at
    )
    MeterValue.objects.create(
        station=station,
        transaction=tx,
        connector_id=1,
        timestamp=at + timedelta(minutes=10),
        value="4000",
        numeric_value=4000,
        normalized_value=4000,
        normalized_unit="Wh",
        unit="Wh",
        location="Outlet",
    )
    return tx


def test_a_session_is_closed_as_never_stopped_when_its_connector_becomes_available(station):
    tx = _started(station)
    free_at = T0 + timedelta(minutes=30)

    connector_statuses_set(
        [StatusReport(station_id=station.pk, connector_id=1, status="Available", timestamp=free_at)]
    )

    tx.refresh_from_db()
    assert tx.state == Transaction.State.ENDED
    assert tx.never_stopped and tx.incomplete
    assert tx.stop_time == free_at
    assert tx.energy_wh == 3000
    assert session_state_of(tx) == SessionState.NEVER_STOPPED
    assert tx.events.filter(kind=TransactionEvent.Kind.NEVER_STOPPED).count() == 1


def test_an_available_from_before_the_start_closes_nothing(station):
    tx = _started(station)

    connector_statuses_set(
        [
            StatusReport(
                station_id=station.pk,
                connector_id=1,
                status="Available",
                timestamp=T0 - timedelta(minutes=1),
            )
        ]
    )

    tx.refresh_from_db()
    assert tx.state == Transaction.State.ACTIVE
    assert not tx.never_stopped


def test_a_stop_arriving_after_the_close_replaces_it(station):
    tx = _started(station)
    connector_statuses_set(
        [
            StatusReport(
                station_id=station.pk,
                connector_id=1,
                status="Available",
                timestamp=T0 + timedelta(minutes=30),
            )
        ]
    )

    transaction_stop(
        station_id=station.pk,
        transaction_id=tx.pk,
        meter_stop=5000,
        timestamp=T0 + timedelta(minutes=20),
        reason="PowerLoss",
    )

    tx.refresh_from_db()
    assert not tx.never_stopped
    assert tx.stop_reason == "PowerLoss"
    assert tx.energy_wh == 4000
    assert session_state_of(tx) == SessionState.FINISHED


def test_a_reboot_closes_the_stations_running_sessions(station, django_assert_num_queries):
    tx = _started(station)
    booted_at = timezone.now()
    # The answer to the boot costs one statement, as before sessions were closed.
    with django_assert_num_queries(1):
        station_boot(station_id=station.pk, info=BootInfo(vendor="V", model="M"))

    closed = station_rebooted(station_id=station.pk, reason="", at=booted_at)

    tx.refresh_from_db()
    assert closed == 1
    assert tx.state == Transaction.State.ENDED
    assert tx.never_stopped
    assert tx.stop_time == booted_at


def test_a_session_started_after_the_reboot_goes_on(station):
    booted_at = timezone.now()
    tx = _started(station, at=booted_at)

    assert station_rebooted(station_id=station.pk, reason="", at=booted_at) == 0
    tx.refresh_from_db()
    assert tx.state == Transaction.State.ACTIVE


@pytest.mark.parametrize("how", ["2.x reason", "1.6 trigger"])
def test_a_boot_the_backend_asked_for_is_no_reboot(station, how):
    tx = _started(station)
    reason = ""
    if how == "2.x reason":
        reason = "Triggered"
    else:
        Command.objects.create(
            station=station,
            action="TriggerMessage",
            payload={"requestedMessage": "BootNotification"},
        )

    station_boot(station_id=station.pk, info=BootInfo(vendor="V", model="M", reason=reason))

    assert station_rebooted(station_id=station.pk, reason=reason, at=timezone.now()) == 0
    tx.refresh_from_db()
    assert tx.state == Transaction.State.ACTIVE


def test_a_2x_session_is_closed_when_its_evse_connector_becomes_available(cpo_a):
    station = make_station("CP-S201", cpo=cpo_a, ocpp_version="2.0.1")
    connector = Connector.objects.create(station=station, evse_id=1, connector_id=1)
    tx = Transaction.objects.create(
        station=station, connector=connector, charger_transaction_id="tx-201", start_time=T0
    )
    other = Transaction.objects.create(
        station=station,
        connector=Connector.objects.create(station=station, evse_id=2, connector_id=1),
        charger_transaction_id="tx-202",
        start_time=T0,
    )

    connector_statuses_set(
        [
            StatusReport(
                station_id=station.pk,
                evse_id=1,
                connector_id=1,
                status="Available",
                timestamp=T0 + timedelta(minutes=5),
            )
        ]
    )

    tx.refresh_from_db()
    other.refresh_from_db()
    assert tx.never_stopped and tx.state == Transaction.State.ENDED
    assert other.state == Transaction.State.ACTIVE
