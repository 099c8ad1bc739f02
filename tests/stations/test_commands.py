"""Requesting commands: who may, and what happens at once (offline, Pending, no gateway)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from cpo.models import Membership
from stations.models import Command, IdTag, RegistrationStatus
from stations.services import commands as commands_module
from stations.services.commands import (
    command_expire_stale,
    command_mark_sent,
    command_record_failure,
    command_request,
    command_request_system,
    station_command_history,
)
from stations.services.notify import DeliveryFailed
from tests.factories import make_member, make_station, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def online(cpo_a):
    return make_station("CP-ON", cpo=cpo_a, connected=True, channel_name="chan.one")


@pytest.fixture
def deliveries(monkeypatch):
    """The "go" messages sent to consumers, instead of a channel layer."""
    sent: list[dict] = []

    def fake_notify(*, channel_name, event_type, **data):
        sent.append({"channel_name": channel_name, "type": event_type, **data})

    monkeypatch.setattr(commands_module, "station_notify", fake_notify)
    return sent


def test_admin_request_is_queued_and_delivered_after_commit(
    online, alice, deliveries, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        command = command_request(station=online, kind="reset", params={"type": "soft"}, user=alice)

    assert command.status == Command.Status.QUEUED
    assert (command.action, command.payload) == ("Reset", {"type": "Soft"})
    assert command.requested_by == alice
    assert deliveries == [
        {"channel_name": "chan.one", "type": "station.command", "command_id": command.pk}
    ]


def test_nothing_is_delivered_before_commit(online, alice, deliveries):
    command_request(station=online, kind="clear_cache", params={}, user=alice)
    assert deliveries == []


def test_technician_may_send_commands(online, cpo_a, deliveries):
    tech = make_user("tess")
    make_member(tech, cpo_a, Membership.Role.TECHNICIAN)
    command = command_request(station=online, kind="clear_cache", params={}, user=tech)
    assert command.status == Command.Status.QUEUED


def test_superuser_may_command_a_pool_station(root, deliveries):
    pooled = make_station("CP-POOL", connected=True, channel_name="chan.pool")
    command = command_request(
        station=pooled, kind="trigger_message", params={"message": "BootNotification"}, user=root
    )
    assert command.status == Command.Status.QUEUED


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_viewer_and_other_cpo_may_not_send_commands(request, online, who, deliveries):
    user = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied):
        command_request(station=online, kind="reset", params={"type": "soft"}, user=user)
    assert Command.objects.count() == 0


def test_cpo_staff_may_not_command_a_pool_station(alice, deliveries):
    pooled = make_station("CP-POOL", connected=True, channel_name="chan.pool")
    with pytest.raises(PermissionDenied):
        command_request(station=pooled, kind="clear_cache", params={}, user=alice)


def test_offline_station_fails_at_once_as_offline(cpo_a, alice, deliveries):
    station = make_station("CP-OFF", cpo=cpo_a, connected=False)
    command = command_request(station=station, kind="reset", params={"type": "hard"}, user=alice)

    assert command.status == Command.Status.OFFLINE
    assert command.completed_at is not None
    assert "offline" in command.error
    assert deliveries == []


def test_station_that_never_connected_fails_as_offline(cpo_a, alice, deliveries):
    station = make_station("CP-NEVER", cpo=cpo_a, ocpp_version="", connected=False)
    command = command_request(station=station, kind="reset", params={"type": "soft"}, user=alice)
    assert (command.action, command.status) == ("Reset", Command.Status.OFFLINE)


def test_non_ocpp_station_takes_no_commands(cpo_a, alice, deliveries):
    station = make_station("EN-1", cpo=cpo_a, protocol="ensto", ocpp_version="")
    with pytest.raises(ValueError, match="Ensto stations take no OCPP commands"):
        command_request(station=station, kind="reset", params={"type": "soft"}, user=alice)
    assert Command.objects.count() == 0


def test_stale_station_object_does_not_hide_a_disconnect(online, alice, deliveries):
    type(online).objects.filter(pk=online.pk).update(connected=False, channel_name="")
    command = command_request(station=online, kind="clear_cache", params={}, user=alice)
    assert command.status == Command.Status.OFFLINE


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("get_configuration", {"keys": []}),
        ("change_configuration", {"key": "HeartbeatInterval", "value": "60"}),
        ("trigger_message", {"message": "BootNotification"}),
    ],
)
def test_pending_station_takes_configuration_and_trigger_commands(
    cpo_a, alice, kind, params, deliveries
):
    station = make_station(
        "CP-PEND",
        cpo=cpo_a,
        registration_status=RegistrationStatus.PENDING,
        connected=True,
        channel_name="chan.p",
    )
    command = command_request(station=station, kind=kind, params=params, user=alice)
    assert command.status == Command.Status.QUEUED


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("reset", {"type": "soft"}),
        ("remote_start", {"id_tag": "CARD1", "connector_id": 1}),
        ("clear_cache", {}),
    ],
)
def test_pending_station_refuses_other_commands_at_once(cpo_a, alice, kind, params, deliveries):
    IdTag.objects.create(cpo=cpo_a, tag="CARD1")  # a remote start needs a tag it would accept
    station = make_station(
        "CP-PEND",
        cpo=cpo_a,
        registration_status=RegistrationStatus.PENDING,
        connected=True,
        channel_name="chan.p",
    )
    command = command_request(station=station, kind=kind, params=params, user=alice)

    assert command.status == Command.Status.ERROR
    assert "Pending" in command.error
    assert "configuration and trigger" in command.error
    assert deliveries == []


def test_unreachable_gateway_makes_the_command_an_error(
    online, alice, monkeypatch, django_capture_on_commit_callbacks
):
    def redis_down(**kwargs):
        raise DeliveryFailed("Connection refused")

    monkeypatch.setattr(commands_module, "station_notify", redis_down)
    with django_capture_on_commit_callbacks(execute=True):
        command = command_request(station=online, kind="reset", params={"type": "soft"}, user=alice)
    command.refresh_from_db()

    assert command.status == Command.Status.ERROR
    assert "could not reach the gateway" in command.error.lower()
    assert command.completed_at is not None


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_returned_command_shows_the_delivery_failure(
    cpo_a, alice, monkeypatch
):
    station = make_station("CP-ON", cpo=cpo_a, connected=True, channel_name="chan.one")

    def redis_down(**kwargs):
        raise DeliveryFailed("Connection refused")

    monkeypatch.setattr(commands_module, "station_notify", redis_down)
    command = command_request(station=station, kind="reset", params={"type": "soft"}, user=alice)
    assert command.status == Command.Status.ERROR


def test_invalid_params_raise_and_record_nothing(online, alice, deliveries):
    with pytest.raises(ValueError, match="soft or hard"):
        command_request(station=online, kind="reset", params={"type": "gentle"}, user=alice)
    with pytest.raises(ValueError, match="Unknown command"):
        command_request(station=online, kind="self_destruct", params={}, user=alice)
    with pytest.raises(ValueError):
        command_request(station=online, kind="get_base_report", params={}, user=alice)
    assert Command.objects.count() == 0


def test_system_command_needs_no_user(online, deliveries, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        command = command_request_system(
            station=online, kind="trigger_message", params={"message": "BootNotification"}
        )
    assert command.requested_by is None
    assert command.payload == {"requestedMessage": "BootNotification"}
    assert deliveries[0]["command_id"] == command.pk


def test_system_command_to_a_station_without_commands_is_skipped(cpo_a, deliveries):
    station = make_station("EN-1", cpo=cpo_a, protocol="ensto", ocpp_version="")
    command = command_request_system(
        station=station, kind="trigger_message", params={"message": "BootNotification"}
    )
    assert command is None
    assert Command.objects.count() == 0


def test_mark_sent_takes_a_queued_command_once(online, alice, deliveries):
    command = command_request(station=online, kind="clear_cache", params={}, user=alice)

    first = command_mark_sent(command_id=command.pk, station_id=online.pk)
    second = command_mark_sent(command_id=command.pk, station_id=online.pk)

    assert (first.action, first.payload) == ("ClearCache", {})
    assert second is None
    command.refresh_from_db()
    assert command.status == Command.Status.SENT
    assert command.sent_at is not None


def test_a_command_that_waited_too_long_is_dropped_not_sent(online, alice, deliveries):
    command = command_request(station=online, kind="reset", params={"type": "hard"}, user=alice)
    Command.objects.filter(pk=command.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    assert command_mark_sent(command_id=command.pk, station_id=online.pk) is None
    command.refresh_from_db()
    assert command.status == Command.Status.ERROR
    assert "waited too long" in command.error


def test_finished_command_is_not_overwritten(online, alice, deliveries):
    command = command_request(station=online, kind="clear_cache", params={}, user=alice)
    command_mark_sent(command_id=command.pk, station_id=online.pk)
    assert command_record_failure(command_id=command.pk, status="timed_out", error="late")
    assert not command_record_failure(command_id=command.pk, status="error", error="again")
    command.refresh_from_db()
    assert command.status == Command.Status.TIMED_OUT


def test_stale_commands_are_finished_by_the_expiry_not_by_reading(
    online, alice, deliveries, settings
):
    settings.OCPP_CALL_TIMEOUT = 30
    lost = command_request(station=online, kind="clear_cache", params={}, user=alice)
    stuck = command_request(station=online, kind="clear_cache", params={}, user=alice)
    fresh = command_request(station=online, kind="clear_cache", params={}, user=alice)
    long_ago = timezone.now() - timedelta(minutes=5)
    Command.objects.filter(pk=lost.pk).update(created_at=long_ago)
    Command.objects.filter(pk=stuck.pk).update(status="sent", created_at=long_ago, sent_at=long_ago)

    read = {c.pk: c.status for c in station_command_history(station=online)}
    assert read == {lost.pk: "queued", stuck.pk: "sent", fresh.pk: "queued"}
    assert command_expire_stale() == 2

    statuses = {c.pk: c.status for c in station_command_history(station=online)}
    assert statuses == {lost.pk: "error", stuck.pk: "timed_out", fresh.pk: "queued"}
    assert command_expire_stale() == 0


def test_a_remote_start_with_a_tag_the_backend_would_refuse_is_not_recorded(
    cpo_a, alice, deliveries
):
    station = make_station("CP-RS", cpo=cpo_a, connected=True, channel_name="chan.rs")
    IdTag.objects.create(cpo=cpo_a, tag="BLOCKED-1", status="Blocked")
    with pytest.raises(ValueError, match="Not sent: the ID tag is blocked"):
        command_request(
            station=station, kind="remote_start", params={"id_tag": "BLOCKED-1"}, user=alice
        )
    assert not Command.objects.exists()
