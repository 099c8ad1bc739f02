"""The handshake and the boot in few round trips, with their rules intact."""

from __future__ import annotations

import pytest
from django.test.utils import CaptureQueriesContext

from stations.models import Station
from stations.services import sessions
from stations.services.boot import BootInfo, station_boot
from stations.services.refusals import ConnectionRefused
from stations.services.sessions import station_open_session
from tests.factories import make_station

pytestmark = [pytest.mark.django_db]


def open_session(cbid: str, channel: str, **kwargs):
    return station_open_session(
        cbid=cbid, version="1.6", channel_name=channel, credentials=None, secure=False, **kwargs
    )


def test_a_known_station_connects_with_a_read_and_one_update(django_assert_num_queries):
    make_station("CP-1")
    with django_assert_num_queries(2):
        session = open_session("cp-1", "chan!1")
    station = Station.objects.get(cbid="CP-1")
    assert session.replaced_channel == ""
    assert (station.connected, station.channel_name, station.ocpp_version) == (
        True,
        "chan!1",
        "1.6",
    )
    assert station.first_connected_at == station.connected_at == station.last_seen


def test_a_reconnect_replaces_the_older_channel_and_keeps_the_first_connection_time(settings):
    settings.OCPP_REPLACE_WITHOUT_PASSWORD = "always"
    make_station("CP-1")
    open_session("CP-1", "chan!1")
    first = Station.objects.get(cbid="CP-1").first_connected_at
    session = open_session("CP-1", "chan!2")
    station = Station.objects.get(cbid="CP-1")
    assert session.replaced_channel == "chan!1"
    assert station.channel_name == "chan!2"
    assert station.first_connected_at == first


def test_a_connection_that_changed_meanwhile_is_read_again(monkeypatch):
    make_station("CP-1")
    open_session("CP-1", "chan!1")
    stale = Station.objects.get(cbid="CP-1")
    # Another process connected the station between our read and our update.
    Station.objects.filter(pk=stale.pk).update(channel_name="chan!other")
    replaced = sessions._session_take_over(
        stale, version="1.6", channel_name="chan!2", now=stale.connected_at
    )
    assert replaced == "chan!other"
    assert Station.objects.get(pk=stale.pk).channel_name == "chan!2"


def test_a_new_station_is_created_connected_without_counting_the_pool_each_time(settings):
    settings.OCPP_POOL_MAX_SIZE = 10_000
    open_session("NEW-0", "chan!0", remote_addr="192.0.2.1")  # counts the pool once
    with CaptureQueriesContext(sessions.transaction.get_connection()) as queries:
        session = open_session("NEW-1", "chan!1", remote_addr="192.0.2.1")
    pool_counts = [q for q in queries.captured_queries if 'cpo_id" IS NULL' in q["sql"]]
    assert pool_counts == []
    station = Station.objects.get(cbid="NEW-1")
    assert session.station_id == station.pk
    assert (station.connected, station.channel_name, station.cpo_id) == (True, "chan!1", None)


def test_near_the_limit_the_pool_is_counted_exactly(settings):
    settings.OCPP_POOL_MAX_SIZE = 3
    settings.OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR = 0
    for i in range(3):
        open_session(f"NEW-{i}", f"chan!{i}")
    with pytest.raises(ConnectionRefused) as refused:
        open_session("NEW-3", "chan!3")
    assert refused.value.reason == "pool_full"


def test_a_claimed_station_boots_with_one_update(cpo_a, django_assert_num_queries):
    station = make_station("CP-1", cpo=cpo_a)
    with django_assert_num_queries(1):
        decision = station_boot(station_id=station.pk, info=BootInfo(vendor="Acme", model="X"))
    station.refresh_from_db()
    assert decision.status == "Accepted"
    assert (station.vendor, station.model, station.registration_status) == ("Acme", "X", "Accepted")
    assert station.last_boot_at is not None


def test_a_pool_station_boots_pending(settings):
    settings.OCPP_POOL_BOOT_STATUS = "Pending"
    station = make_station("CP-1")
    decision = station_boot(station_id=station.pk, info=BootInfo(vendor="Acme", reason="PowerUp"))
    station.refresh_from_db()
    assert (decision.status, station.registration_status) == ("Pending", "Pending")
    assert (station.vendor, station.boot_reason) == ("Acme", "PowerUp")


def test_booting_a_missing_station_raises():
    with pytest.raises(Station.DoesNotExist):
        station_boot(station_id=999_999, info=BootInfo())


def test_a_reload_takes_the_registration_and_keeps_the_connection(cpo_a):
    make_station("CP-1")
    session = open_session("CP-1", "chan!1")
    Station.objects.filter(pk=session.station_id).update(
        cpo=cpo_a, registration_status="Accepted", ocpp_version="2.0.1"
    )
    fresh = sessions.station_session_reload(session=session)
    assert (fresh.cpo_id, fresh.registration_status) == (cpo_a.pk, "Accepted")
    assert (fresh.station_id, fresh.cbid, fresh.version) == (session.station_id, "CP-1", "1.6")


def test_a_connection_on_probation_never_takes_over_a_station_given_a_password_meanwhile():
    make_station("CP-P", serial_number="SN-1")
    open_session("CP-P", "chan!live")
    probation = open_session("CP-P", "chan!new")
    assert probation.probation and probation.registration_status == "Pending"
    Station.objects.filter(cbid="CP-P").update(auth_password_hash="x")

    taken = sessions.station_take_over_by_serial(
        session=probation, channel_name="chan!new", serial_numbers=("SN-1",)
    )

    assert taken is None
    assert Station.objects.get(cbid="CP-P").channel_name == "chan!live"


def test_a_connection_on_probation_takes_over_with_the_serial_whatever_its_case():
    make_station("CP-P", serial_number="SN-1")
    open_session("CP-P", "chan!live")
    probation = open_session("CP-P", "chan!new")

    taken = sessions.station_take_over_by_serial(
        session=probation, channel_name="chan!new", serial_numbers=("", " sn-1 ")
    )

    assert taken is not None and taken.replaced_channel == "chan!live"
    assert not taken.probation
    assert Station.objects.get(cbid="CP-P").channel_name == "chan!new"
