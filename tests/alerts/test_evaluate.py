"""The evaluator: every rule, its debounce, resolving, and grouping into notifications."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Alert, Notification, RuleKind
from alerts.services.evaluate import alert_condition_report, alerts_evaluate
from alerts.services.rules import alert_rule_update
from stations.models import (
    Command,
    Connector,
    OcppMessage,
    RegistrationStatus,
    Station,
    Transaction,
)
from tests.factories import make_station

pytestmark = pytest.mark.django_db


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


T0 = timezone.now().replace(microsecond=0) + timedelta(days=1)


def offline(station, since):
    station.connected = False
    station.disconnected_at = since
    station.save()


def online(station):
    station.connected = True
    station.save()


def frame(station, action, payload, when):
    return OcppMessage.objects.create(
        station=station,
        cbid=station.cbid,
        direction=OcppMessage.Direction.IN,
        message_type=2,
        action=action,
        payload=payload,
        created_at=when,
    )


def raised(**filters):
    return list(Alert.objects.exclude(state=Alert.State.PENDING).filter(**filters))


# ---- offline and its debounce -------------------------------------------------------------


def test_offline_opens_after_the_delay_only(cpo_a):
    alert_rule_update(cpo=cpo_a, kind=RuleKind.OFFLINE, enabled=True, delay_seconds=300)
    station = make_station("CP-1", cpo=cpo_a)
    offline(station, at(0))
    alerts_evaluate(now=at(10))
    assert raised() == []
    assert Alert.objects.get().state == Alert.State.PENDING
    result = alerts_evaluate(now=at(301))
    [alert] = raised()
    assert (alert.kind, alert.state, alert.opened_at) == ("offline", "open", at(301))
    assert result.opened == 1


def test_offline_that_comes_back_within_the_delay_raises_nothing(cpo_a):
    alert_rule_update(cpo=cpo_a, kind=RuleKind.OFFLINE, enabled=True, delay_seconds=300)
    station = make_station("CP-1", cpo=cpo_a)
    offline(station, at(0))
    alerts_evaluate(now=at(10))
    online(station)
    alerts_evaluate(now=at(200))
    offline(station, at(250))  # drops again: a new wait
    alerts_evaluate(now=at(400))
    assert raised() == []
    assert Notification.objects.count() == 0
    alerts_evaluate(now=at(551))
    assert len(raised(state="open")) == 1


def test_offline_resolves_by_itself_when_the_station_returns(cpo_a):
    station = make_station("CP-1", cpo=cpo_a)
    offline(station, at(0))
    alerts_evaluate(now=at(600))
    online(station)
    result = alerts_evaluate(now=at(700))
    [alert] = raised()
    assert (alert.state, alert.resolved_at) == ("resolved", at(700))
    assert result.resolved == 1
    changes = sorted(Notification.objects.values_list("change", flat=True))
    assert changes == ["opened", "resolved"]


def test_a_disabled_rule_raises_nothing(cpo_a):
    alert_rule_update(cpo=cpo_a, kind=RuleKind.OFFLINE, enabled=False, delay_seconds=0)
    offline(make_station("CP-1", cpo=cpo_a), at(0))
    alerts_evaluate(now=at(1000))
    assert Alert.objects.count() == 0


def test_pool_stations_raise_nothing(db):
    offline(make_station("CP-POOL"), at(0))
    alerts_evaluate(now=at(1000))
    assert Alert.objects.count() == 0


def test_acknowledged_then_resolved(cpo_a, alice):
    from alerts.services.alert_list import alert_acknowledge

    station = make_station("CP-1", cpo=cpo_a)
    offline(station, at(0))
    alerts_evaluate(now=at(600))
    alert = alert_acknowledge(alert=Alert.objects.get(), user=alice)
    assert (alert.state, alert.acknowledged_by) == ("acknowledged", alice)
    online(station)
    alerts_evaluate(now=at(700))
    alert.refresh_from_db()
    assert alert.state == "resolved"


# ---- faulted ------------------------------------------------------------------------------


def test_faulted_connector_with_its_error_code(cpo_a):
    alert_rule_update(cpo=cpo_a, kind=RuleKind.FAULTED, enabled=True, delay_seconds=60)
    station = make_station("CP-1", cpo=cpo_a, connected=True)
    connector = Connector.objects.create(
        station=station, connector_id=2, status="Faulted", error_code="GroundFailure"
    )
    alerts_evaluate(now=at(0))
    alerts_evaluate(now=at(30))
    assert raised() == []
    alerts_evaluate(now=at(61))
    [alert] = raised()
    assert (alert.kind, alert.key, alert.error_code, alert.connector) == (
        "faulted",
        "2",
        "GroundFailure",
        connector,
    )
    assert "connector 2 Faulted: GroundFailure" in alert.detail
    connector.status = "Available"
    connector.save()
    alerts_evaluate(now=at(90))
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_faulted_only_for_chosen_error_codes(cpo_a):
    alert_rule_update(
        cpo=cpo_a, kind=RuleKind.FAULTED, enabled=True, delay_seconds=0, error_codes="GroundFailure"
    )
    station = make_station("CP-1", cpo=cpo_a, connected=True)
    Connector.objects.create(station=station, connector_id=1, status="Faulted", error_code="Other")
    Connector.objects.create(
        station=station, connector_id=2, status="Faulted", error_code="GroundFailure"
    )
    alerts_evaluate(now=at(0))
    assert [a.key for a in raised()] == ["2"]


def test_faulted_that_clears_within_the_delay_raises_nothing(cpo_a):
    station = make_station("CP-1", cpo=cpo_a, connected=True)
    connector = Connector.objects.create(station=station, connector_id=1, status="Faulted")
    alerts_evaluate(now=at(0))
    connector.status = "Available"
    connector.save()
    alerts_evaluate(now=at(30))
    alerts_evaluate(now=at(120))
    assert Alert.objects.count() == 0


# ---- boot rejected ------------------------------------------------------------------------


def test_boot_rejected_opens_and_clears(cpo_a):
    station = make_station(
        "CP-1", cpo=cpo_a, registration_status=RegistrationStatus.REJECTED, last_boot_at=at(0)
    )
    alerts_evaluate(now=at(1))
    [alert] = raised()
    assert alert.kind == "boot_rejected"
    station.registration_status = RegistrationStatus.ACCEPTED
    station.save()
    alerts_evaluate(now=at(2))
    alert.refresh_from_db()
    assert alert.state == "resolved"


# ---- events -------------------------------------------------------------------------------


def test_unexpected_reboot_but_not_a_requested_one(cpo_a):
    station = make_station("CP-1", cpo=cpo_a, ocpp_version="2.0.1", connected=True)
    frame(station, "BootNotification", {"reason": "Watchdog"}, at(0))
    frame(station, "BootNotification", {"reason": "RemoteReset"}, at(1))
    alerts_evaluate(now=at(5))
    [alert] = raised()
    assert (alert.kind, alert.detail) == ("reboot", "Rebooted (Watchdog)")
    # Seen events are not raised twice, even after they are resolved.
    alerts_evaluate(now=at(6))
    assert Alert.objects.count() == 1


def test_16_reboot_after_a_reset_command_is_expected(cpo_a):
    station = make_station("CP-1", cpo=cpo_a, connected=True)
    command = Command.objects.create(station=station, action="Reset", payload={"type": "Soft"})
    Command.objects.filter(pk=command.pk).update(created_at=at(-60))
    frame(station, "BootNotification", {"chargePointVendor": "V"}, at(0))
    other = make_station("CP-2", cpo=cpo_a, connected=True)
    frame(other, "BootNotification", {"chargePointVendor": "V"}, at(0))
    alerts_evaluate(now=at(5))
    assert [a.station for a in raised()] == [other]


def test_security_event_with_its_type(cpo_a, alice):
    from alerts.services.alert_list import alert_acknowledge

    station = make_station("CP-1", cpo=cpo_a, connected=True)
    frame(
        station,
        "SecurityEventNotification",
        {"type": "TamperDetectionActivated", "timestamp": "x", "techInfo": "lid open"},
        at(0),
    )
    alerts_evaluate(now=at(1))
    [alert] = raised()
    assert (alert.kind, alert.error_code, alert.detail) == (
        "security_event",
        "TamperDetectionActivated",
        "TamperDetectionActivated: lid open",
    )
    # An event resolves when a person has seen it.
    alert = alert_acknowledge(alert=alert, user=alice)
    assert alert.state == "resolved"


def test_firmware_failed_and_cleared_by_installed(cpo_a):
    station = make_station("CP-1", cpo=cpo_a, connected=True)
    frame(station, "FirmwareStatusNotification", {"status": "Downloading"}, at(0))
    frame(station, "FirmwareStatusNotification", {"status": "InstallationFailed"}, at(1))
    alerts_evaluate(now=at(2))
    [alert] = raised()
    assert (alert.kind, alert.detail) == ("firmware_failed", "Firmware update: InstallationFailed")
    frame(station, "FirmwareStatusNotification", {"status": "Installed"}, at(10))
    alerts_evaluate(now=at(11))
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_session_stopped_by_the_backend_when_the_rule_is_on(cpo_a):
    station = make_station("CP-1", cpo=cpo_a, connected=True)
    Transaction.objects.create(
        station=station, state="completed", stop_reason="Remote", stop_received_at=at(0)
    )
    Transaction.objects.create(
        station=station, state="completed", stop_reason="Local", stop_received_at=at(0)
    )
    alerts_evaluate(now=at(1))
    assert raised() == []  # off by default
    alert_rule_update(cpo=cpo_a, kind=RuleKind.BACKEND_STOP, enabled=True, delay_seconds=0)
    alerts_evaluate(now=at(2))
    [alert] = raised()
    assert alert.kind == "backend_stop"
    assert "(Remote)" in alert.detail


def test_event_debounce_waits_the_delay(cpo_a):
    alert_rule_update(cpo=cpo_a, kind=RuleKind.SECURITY_EVENT, enabled=True, delay_seconds=120)
    station = make_station("CP-1", cpo=cpo_a, connected=True)
    frame(station, "SecurityEventNotification", {"type": "InvalidMessages"}, at(0))
    alerts_evaluate(now=at(1))
    assert raised() == []
    alerts_evaluate(now=at(121))
    assert len(raised()) == 1


def test_local_list_hook(cpo_a):
    station = make_station("CP-1", cpo=cpo_a, connected=True)
    alert_condition_report(
        station_id=station.pk, kind=RuleKind.LOCAL_LIST, active=True, detail="version 3, not 4"
    )
    alerts_evaluate()
    [alert] = raised()
    assert (alert.kind, alert.detail) == ("local_list", "version 3, not 4")
    alert_condition_report(station_id=station.pk, kind=RuleKind.LOCAL_LIST, active=False)
    alert.refresh_from_db()
    assert alert.state == "resolved"


# ---- grouping -----------------------------------------------------------------------------


def test_a_thousand_stations_offline_at_once_is_one_notification(cpo_a, cpo_b, settings):
    settings.ALERTS_GROUP_WINDOW = 30
    # A power cut: they drop within a few seconds of each other.
    Station.objects.bulk_create(
        Station(cbid=f"CP-{i:04}", cpo=cpo_a, connected=False, disconnected_at=at(i % 7))
        for i in range(1000)
    )
    offline(make_station("CP-B", cpo=cpo_b), at(0))
    alerts_evaluate(now=at(303))
    alerts_evaluate(now=at(306))
    alerts_evaluate(now=at(310))
    assert Alert.objects.filter(cpo=cpo_a, state="open").count() == 1000
    [notification] = Notification.objects.filter(cpo=cpo_a)
    assert notification.alerts.count() == 1000
    assert Notification.objects.filter(cpo=cpo_b).count() == 1
