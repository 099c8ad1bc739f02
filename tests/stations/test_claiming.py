"""The rules of "Add new station" and of moving stations between CPOs."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, connections

from cpo.models import Membership
from stations.models import Command, Protocol, RegistrationStatus, Station, StationAssignment
from stations.services import claiming
from stations.services.claiming import ClaimError, station_assign, station_claim
from tests.factories import make_cpo, make_member, make_station, make_user

pytestmark = pytest.mark.django_db


def test_a_pooled_ocpp_cbid_is_assigned_to_the_cpo_and_accepted(alice, cpo_a):
    make_station("CP-POOL-1")

    station = station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-POOL-1")

    station.refresh_from_db()
    assert station.cpo == cpo_a
    assert station.registration_status == RegistrationStatus.ACCEPTED


def test_the_cbid_is_trimmed_and_matched_whatever_its_case(alice, cpo_a):
    make_station("Cp-Pool-1")

    station = station_claim(user=alice, protocol=Protocol.OCPP, cbid="  cp-POOL-1 \t")

    assert station.cbid == "Cp-Pool-1"
    assert station.cpo == cpo_a


def test_a_cbid_that_never_connected_gets_the_url_to_set_on_the_charger(alice, settings):
    settings.OCPP_PUBLIC_URL = "wss://csms.example.com/"

    with pytest.raises(ClaimError) as caught:
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="NEVER-SEEN")

    assert "No charger with the CBID “NEVER-SEEN” is waiting to be added" in caught.value.message
    assert "wss://csms.example.com/ocpp/NEVER-SEEN" in caught.value.message
    assert caught.value.field == "cbid"
    assert not Station.objects.exists()


def test_a_cbid_already_in_one_of_the_users_cpos_says_so(alice, cpo_a):
    make_station("CP-MINE", cpo=cpo_a)

    with pytest.raises(ClaimError, match="already in your CPO CPO A"):
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="cp-mine")


def test_a_cbid_of_another_cpo_is_refused_without_naming_it(alice, cpo_b):
    make_station("CP-THEIRS", cpo=cpo_b)

    with pytest.raises(ClaimError) as caught:
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-THEIRS")

    assert "is waiting to be added" in caught.value.message
    assert "CPO B" not in caught.value.message
    assert Station.objects.get(cbid="CP-THEIRS").cpo == cpo_b


def test_a_viewer_may_not_add_stations(bob):
    make_station("CP-POOL-1")

    with pytest.raises(PermissionDenied):
        station_claim(user=bob, protocol=Protocol.OCPP, cbid="CP-POOL-1")

    assert Station.objects.get(cbid="CP-POOL-1").cpo is None


def test_a_technician_may_not_add_stations(cpo_a):
    tess = make_user("tess")
    make_member(tess, cpo_a, Membership.Role.TECHNICIAN)
    make_station("CP-POOL-1")

    with pytest.raises(PermissionDenied):
        station_claim(user=tess, protocol=Protocol.OCPP, cbid="CP-POOL-1")


def test_a_user_may_not_add_to_a_cpo_they_are_not_admin_of(alice, cpo_b):
    make_station("CP-POOL-1")

    with pytest.raises(PermissionDenied):
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-POOL-1", cpo=cpo_b)


def test_a_user_with_several_cpos_must_choose_one(alice, cpo_b):
    make_member(alice, cpo_b, Membership.Role.ADMIN)
    make_station("CP-POOL-1")

    with pytest.raises(ClaimError) as caught:
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-POOL-1")

    assert caught.value.field == "cpo"
    station = station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-POOL-1", cpo=cpo_b)
    assert station.cpo == cpo_b


@pytest.mark.parametrize("protocol", [Protocol.ENSTO, Protocol.REMOTEC])
def test_ensto_and_remotec_stations_are_registered_waiting_for_connection(alice, cpo_a, protocol):
    station = station_claim(user=alice, protocol=protocol, cbid=" DEV-0042 ")

    station.refresh_from_db()
    assert (station.cbid, station.protocol, station.cpo) == ("DEV-0042", protocol, cpo_a)
    assert not station.connected and station.first_connected_at is None
    assert StationAssignment.objects.get(station=station).to_cpo == cpo_a


def test_a_pooled_ocpp_station_cannot_be_claimed_as_ensto(alice):
    make_station("CP-POOL-1")

    with pytest.raises(ClaimError) as caught:
        station_claim(user=alice, protocol=Protocol.ENSTO, cbid="CP-POOL-1")

    assert caught.value.field == "protocol"
    assert Station.objects.get(cbid="CP-POOL-1").cpo is None


def test_an_invalid_ocpp_cbid_is_refused_beside_the_field(alice):
    with pytest.raises(ClaimError) as caught:
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="has space/slash")

    assert caught.value.field == "cbid"


def test_a_claim_writes_the_audit_record(alice, cpo_a):
    make_station("CP-POOL-1")

    station = station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-POOL-1")

    record = StationAssignment.objects.get(station=station)
    assert record.from_cpo is None and record.to_cpo == cpo_a
    assert (record.to_cpo_name, record.by, record.by_username) == ("CPO A", alice, "alice")
    assert record.source == "panel"


def test_moving_a_station_needs_admin_of_both_cpos(alice, cpo_a, cpo_b):
    station = make_station("CP-1", cpo=cpo_a)

    with pytest.raises(PermissionDenied):
        station_assign(station=station, cpo=cpo_b, by=alice, source="panel")

    make_member(alice, cpo_b, Membership.Role.ADMIN)
    station = station_assign(station=station, cpo=cpo_b, by=alice, source="panel")
    assert station.cpo == cpo_b
    record = StationAssignment.objects.get(station=station)
    assert (record.from_cpo_name, record.to_cpo_name) == ("CPO A", "CPO B")


def test_a_superuser_may_move_any_station(root, cpo_a, cpo_b):
    station = make_station("CP-1", cpo=cpo_a)

    station = station_assign(station=station, cpo=cpo_b, by=root, source="admin")

    assert Station.objects.get(pk=station.pk).cpo == cpo_b
    assert StationAssignment.objects.get(station=station).source == "admin"


def test_returning_a_station_to_the_pool_makes_it_pending_again(root, cpo_a):
    station = make_station("CP-1", cpo=cpo_a)

    station = station_assign(station=station, cpo=None, by=root, source="admin")

    assert station.cpo is None
    assert station.registration_status == RegistrationStatus.PENDING


def test_assigning_to_the_same_cpo_changes_nothing(cpo_a):
    station = make_station("CP-1", cpo=cpo_a)

    station_assign(station=station, cpo=cpo_a, by=None, source="cli")

    assert not StationAssignment.objects.exists()


def test_claiming_a_connected_station_tells_its_consumer_after_commit(
    alice, django_capture_on_commit_callbacks
):
    make_station("CP-LIVE", connected=True, channel_name="specific.abc!def")

    with (
        mock.patch.object(claiming, "station_notify") as notify,
        mock.patch.object(claiming, "_request_boot_trigger") as trigger,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        station = station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-LIVE")
        assert not notify.called  # not before the commit

    assert len(callbacks) == 1
    notify.assert_called_once_with(channel_name="specific.abc!def", event_type="station.refresh")
    trigger.assert_called_once()
    assert trigger.call_args.args[0].pk == station.pk


def test_a_failed_delivery_does_not_undo_the_claim(
    alice, cpo_a, django_capture_on_commit_callbacks
):
    make_station("CP-LIVE", connected=True, channel_name="specific.abc!def")

    with (
        mock.patch.object(
            claiming, "station_notify", side_effect=claiming.DeliveryFailed("redis down")
        ),
        django_capture_on_commit_callbacks(execute=True),
    ):
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-LIVE")

    assert Station.objects.get(cbid="CP-LIVE").cpo == cpo_a


def test_a_claimed_connected_station_is_asked_to_boot_again_through_a_command(
    alice, django_capture_on_commit_callbacks
):
    make_station("CP-LIVE", connected=True, channel_name="specific.abc!def")

    with (
        mock.patch.object(claiming, "station_notify"),
        mock.patch("stations.services.commands.station_notify"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-LIVE")

    command = Command.objects.get()
    assert (command.action, command.payload) == (
        "TriggerMessage",
        {"requestedMessage": "BootNotification"},
    )
    assert command.requested_by == alice


def test_moving_a_connected_station_between_cpos_asks_no_boot(
    root, cpo_a, cpo_b, django_capture_on_commit_callbacks
):
    station = make_station("CP-LIVE", cpo=cpo_a, connected=True, channel_name="specific.x")

    with (
        mock.patch.object(claiming, "station_notify") as notify,
        django_capture_on_commit_callbacks(execute=True),
    ):
        station_assign(station=station, cpo=cpo_b, by=root, source="admin")

    assert notify.called
    assert not Command.objects.exists()


def test_an_offline_station_is_not_notified(alice, django_capture_on_commit_callbacks):
    make_station("CP-OFF")

    with (
        mock.patch.object(claiming, "station_notify") as notify,
        django_capture_on_commit_callbacks(execute=True),
    ):
        station_claim(user=alice, protocol=Protocol.OCPP, cbid="CP-OFF")

    assert not notify.called


@pytest.mark.django_db(transaction=True)
def test_of_two_concurrent_claims_exactly_one_wins():
    """Two users of two CPOs claim one pooled CBID in two real, overlapping transactions."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks (select_for_update) need PostgreSQL")
    cpo_a, cpo_b = make_cpo("CPO A"), make_cpo("CPO B")
    alice, carol = make_user("alice"), make_user("carol")
    make_member(alice, cpo_a, Membership.Role.ADMIN)
    make_member(carol, cpo_b, Membership.Role.ADMIN)
    station = make_station("CP-RACE")

    # A third transaction holds the row so both claims start and block on the lock: when
    # it lets go, they race for real.
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                Station.objects.select_for_update().get(pk=station.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    results: dict[str, object] = {}

    def claim(user) -> None:
        try:
            results[user.username] = station_claim(
                user=user, protocol=Protocol.OCPP, cbid="cp-race"
            )
        except ClaimError as exc:
            results[user.username] = exc
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    assert locked.wait(10)
    claimers = [threading.Thread(target=claim, args=(u,)) for u in (alice, carol)]
    for t in claimers:
        t.start()
    # Give both claims time to reach the lock, then let them race.
    threading.Event().wait(0.5)
    release.set()
    for t in (holder, *claimers):
        t.join(20)

    winners = [name for name, r in results.items() if isinstance(r, Station)]
    losers = [r for r in results.values() if isinstance(r, ClaimError)]
    assert len(winners) == 1 and len(losers) == 1, results
    assert "is waiting to be added" in losers[0].message
    station.refresh_from_db()
    assert station.cpo == {"alice": cpo_a, "carol": cpo_b}[winners[0]]
    assert StationAssignment.objects.filter(station=station).count() == 1
