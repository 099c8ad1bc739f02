"""Issue 11 point 5: a charger password is never shown, to any role, wherever it passes:
command history (page, live part, JSON API), configuration table, station log."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from django.utils import timezone

from cpo.models import Membership
from stations.models import Command, OcppMessage, StationVariable
from stations.services.commands import command_record_failure, command_record_result
from stations.services.device_model import device_model_store_report
from stations.services.station_log import LogRow, ocpp_log_write
from tests.factories import make_member, make_station, make_user

pytestmark = pytest.mark.django_db

SECRET = "Zq8rT2pLx9Vb4nKc7Wm3"
SECRET_HEX = SECRET.encode().hex()


@pytest.fixture
def tina(cpo_a):
    user = make_user("tina")
    make_member(user, cpo_a, Membership.Role.TECHNICIAN)
    return user


@pytest.fixture
def station(cpo_a):
    return make_station("CP-PW", cpo=cpo_a, connected=True, channel_name="chan!x")


def _pages(client, station) -> str:
    """Everything a member reads about the station's commands, configuration and log."""
    urls = [
        reverse("stations:detail", args=[station.pk]),
        reverse("stations:live", args=[station.pk]),
        reverse("stations:log", args=[station.pk]),
        reverse("api:station_commands", args=[station.pk]),
    ]
    urls += [
        reverse("api:station_command_detail", args=[station.pk, pk])
        for pk in station.commands.values_list("pk", flat=True)
    ]
    texts = []
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        texts.append(response.content.decode())
    return "\n".join(texts)


def _assert_hidden(text: str) -> None:
    assert SECRET not in text
    assert SECRET_HEX not in text
    assert SECRET_HEX.upper() not in text


@pytest.mark.parametrize("who", ["alice", "bob", "tina", "root"])
def test_a_pending_rotation_never_shows_the_new_password(client, who, request, station):
    Command.objects.create(
        station=station,
        action="ChangeConfiguration",
        payload={"key": "AuthorizationKey", "value": SECRET_HEX},
        status=Command.Status.SENT,
        sent_at=timezone.now(),
    )
    Command.objects.create(
        station=station,
        action="SetVariables",
        payload={
            "setVariableData": [
                {
                    "attributeValue": SECRET,
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                }
            ]
        },
        status=Command.Status.QUEUED,
    )
    client.force_login(request.getfixturevalue(who))

    text = _pages(client, station)

    assert "ChangeConfiguration" in text
    _assert_hidden(text)


def test_a_technicians_authorization_key_change_is_blanked_once_answered(station, tina):
    # Not the hex a rotation sends: password_in cannot read it, the redaction must anyway.
    plain = Command.objects.create(
        station=station,
        action="ChangeConfiguration",
        payload={"key": "AuthorizationKey", "value": SECRET},
        status=Command.Status.SENT,
        requested_by=tina,
    )
    failed = Command.objects.create(
        station=station,
        action="ChangeConfiguration",
        payload={"key": "authorizationkey", "value": SECRET},
        status=Command.Status.SENT,
        requested_by=tina,
    )

    command_record_result(command_id=plain.pk, status="accepted", response={"status": "Accepted"})
    command_record_failure(command_id=failed.pk, status="timed_out", error="no answer")

    for command in Command.objects.filter(pk__in=[plain.pk, failed.pk]):
        _assert_hidden(json.dumps(command.payload))


@pytest.mark.parametrize("who", ["alice", "bob", "tina"])
def test_reported_passwords_are_stored_blanked_and_never_shown(client, who, request, station):
    read = Command.objects.create(
        station=station,
        action="GetConfiguration",
        payload={},
        status=Command.Status.SENT,
        sent_at=timezone.now(),
    )
    command_record_result(
        command_id=read.pk,
        status="accepted",
        response={
            "configurationKey": [
                {"key": "AuthorizationKey", "readonly": False, "value": SECRET_HEX},
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            ]
        },
    )
    device_model_store_report(
        station_id=station.pk,
        report_data=[
            {
                "component": {"name": "SecurityCtrlr"},
                "variable": {"name": "BasicAuthPassword"},
                "variable_attribute": [{"type": "Actual", "value": SECRET}],
            }
        ],
    )
    frames = [
        {"configurationKey": [{"key": "AuthorizationKey", "value": SECRET_HEX}]},
        {
            "reportData": [
                {
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                    "variableAttribute": [{"value": SECRET}],
                }
            ]
        },
    ]
    now = timezone.now()
    ocpp_log_write(
        rows=[
            LogRow(
                station.pk,
                station.cbid,
                "in",
                3,
                "GetConfiguration",
                "1",
                json.dumps(frames[0]),
                "",
                now,
            ),
            LogRow(
                station.pk,
                station.cbid,
                "in",
                2,
                "NotifyReport",
                "2",
                json.dumps(frames[1]),
                "",
                now,
            ),
            LogRow(
                station.pk,
                station.cbid,
                "in",
                None,
                "",
                "",
                None,
                f'[3,"1",{{"key":"AuthorizationKey","value":"{SECRET_HEX}"',
                now,
            ),
        ],
        seen={},
    )
    # A row written before redaction on write existed is blanked out on display.
    OcppMessage.objects.create(
        station=station,
        direction="in",
        message_type=3,
        action="GetConfiguration",
        payload=frames[0],
    )

    stored = [
        json.dumps(Command.objects.get(pk=read.pk).response),
        *StationVariable.objects.values_list("value", flat=True),
        *(json.dumps(m.payload) + m.raw for m in OcppMessage.objects.all()[1:]),
    ]
    for value in stored:
        _assert_hidden(value)
    assert StationVariable.objects.get(variable="HeartbeatInterval").value == "300"
    client.force_login(request.getfixturevalue(who))
    text = _pages(client, station)
    _assert_hidden(text)
    assert "HeartbeatInterval" in text
