"""The station log query and the log pruning command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from stations.models import OcppMessage
from stations.services.station_log import message_payload_text, station_log
from tests.factories import make_station

pytestmark = pytest.mark.django_db


def log(station, action, *, direction="in", message_type=2, age=timedelta(minutes=1)):
    return OcppMessage.objects.create(
        station=station,
        cbid=station.cbid if station else "",
        direction=direction,
        message_type=message_type,
        action=action,
        unique_id="u",
        payload={},
        created_at=timezone.now() - age,
    )


def test_log_is_newest_first_and_only_this_station(cpo_a):
    station = make_station("CP-LOG", cpo=cpo_a)
    other = make_station("CP-OTHER", cpo=cpo_a)
    older = log(station, "BootNotification", age=timedelta(minutes=5))
    newer = log(station, "StatusNotification", age=timedelta(minutes=1))
    log(other, "BootNotification")

    assert list(station_log(station=station)) == [newer, older]


def test_log_shows_the_last_24_hours_by_default(cpo_a):
    station = make_station("CP-LOG", cpo=cpo_a)
    recent = log(station, "Heartbeat", age=timedelta(hours=23))
    old = log(station, "Heartbeat", age=timedelta(hours=25))

    assert list(station_log(station=station)) == [recent]
    since = timezone.now() - timedelta(days=2)
    assert list(station_log(station=station, since=since)) == [recent, old]


def test_hiding_noise_hides_heartbeats_and_meter_values_and_their_answers(cpo_a):
    station = make_station("CP-LOG", cpo=cpo_a)
    log(station, "Heartbeat")
    log(station, "Heartbeat", direction="out", message_type=3)
    log(station, "MeterValues")
    log(station, "MeterValues", direction="out", message_type=3)
    boot = log(station, "BootNotification")
    reset = log(station, "Reset", direction="out")

    assert station_log(station=station).count() == 6
    assert set(station_log(station=station, hide_noise=True)) == {boot, reset}


def test_payloads_read_as_indented_json_or_raw_text(cpo_a):
    station = make_station("CP-LOG", cpo=cpo_a)
    message = log(station, "BootNotification")
    message.payload = {"chargePointVendor": "Äcme", "n": 1}
    unparsed = OcppMessage(station=station, direction="in", payload=None, raw="[2,")

    assert message_payload_text(message) == '{\n  "chargePointVendor": "Äcme",\n  "n": 1\n}'
    assert message_payload_text(unparsed) == "[2,"


def test_prune_deletes_only_rows_older_than_the_retention(cpo_a, settings):
    settings.OCPP_LOG_RETENTION_DAYS = 30
    station = make_station("CP-LOG", cpo=cpo_a)
    kept = log(station, "Heartbeat", age=timedelta(days=29))
    for _ in range(5):
        log(station, "Heartbeat", age=timedelta(days=31))
    log(None, "", age=timedelta(days=40))  # an unparseable frame of no station

    out = StringIO()
    call_command("prune_ocpp_log", "--batch-size", "2", stdout=out)

    assert list(OcppMessage.objects.all()) == [kept]
    assert "Deleted 6 OCPP log rows older than 30 days" in out.getvalue()


def test_prune_takes_the_age_from_the_command_line(cpo_a):
    station = make_station("CP-LOG", cpo=cpo_a)
    log(station, "Heartbeat", age=timedelta(days=3))
    kept = log(station, "Heartbeat", age=timedelta(hours=1))

    call_command("prune_ocpp_log", "--days", "1", stdout=StringIO())

    assert list(OcppMessage.objects.all()) == [kept]


def test_prune_refuses_a_negative_age():
    with pytest.raises(CommandError):
        call_command("prune_ocpp_log", "--days", "-1", stdout=StringIO())
