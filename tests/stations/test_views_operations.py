"""Station settings, commands and the station log in the panel: permissions four ways over
every new URL, then what each page does."""

from __future__ import annotations

import html
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from cpo.models import Membership
from stations.models import Command, Connector, IdTag, OcppMessage, RegistrationStatus, Station
from stations.services import commands as commands_module
from tests.factories import make_member, make_station, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def deliveries(monkeypatch):
    """The "go" messages the service would send to the charger's consumer."""
    sent: list[dict] = []

    def fake_notify(*, channel_name, event_type, **data):
        sent.append({"channel_name": channel_name, "type": event_type, **data})

    monkeypatch.setattr(commands_module, "station_notify", fake_notify)
    return sent


@pytest.fixture
def station_a(cpo_a):
    station = make_station(
        "CP-OPS-1", cpo=cpo_a, connected=True, channel_name="chan.ops", vendor="Acme"
    )
    Connector.objects.create(station=station, connector_id=1, status="Available")
    return station


@pytest.fixture
def tess(cpo_a):
    """A technician of CPO A."""
    user = make_user("tess")
    make_member(user, cpo_a, Membership.Role.TECHNICIAN)
    return user


def settings_data(station: Station, **overrides) -> dict:
    connector = station.connectors.get()
    data = {
        "name": "Harbour charger",
        "street": "Satamakatu 1",
        "postal_code": "00160",
        "city": "Helsinki",
        "country": "FI",
        "latitude": "60.167",
        "longitude": "24.955",
        "free_usage": "",
        "reservation_enabled": "on",
        f"connector_{connector.pk}_plug_type": "type2",
        f"connector_{connector.pk}_max_power_kw": "22",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


# (url name, method, POST data): every URL this change adds.
OPERATION_URLS = [
    ("stations:settings", "get", None),
    ("stations:settings", "post", "settings"),
    ("stations:command", "post", {"kind": "reset", "reset-type": "soft"}),
    ("stations:live", "get", None),
    ("stations:log", "get", None),
]
IDS = [f"{method} {name}" for name, method, _ in OPERATION_URLS]


def _request(client, station, name, method, data):
    if data == "settings":
        data = settings_data(station)
    return getattr(client, method)(reverse(name, args=[station.pk]), data)


@pytest.mark.parametrize(("name", "method", "data"), OPERATION_URLS, ids=IDS)
def test_every_url_works_for_an_admin(client, alice, station_a, deliveries, name, method, data):
    client.force_login(alice)

    response = _request(client, station_a, name, method, data)

    if method == "get":
        assert response.status_code == 200
    else:
        assert response.status_code == 302, response.content.decode()[:3000]


@pytest.mark.parametrize(("name", "method", "data"), OPERATION_URLS, ids=IDS)
def test_every_url_works_for_a_technician(client, tess, station_a, deliveries, name, method, data):
    client.force_login(tess)

    response = _request(client, station_a, name, method, data)

    assert response.status_code == (200 if method == "get" else 302)


@pytest.mark.parametrize(("name", "method", "data"), OPERATION_URLS, ids=IDS)
def test_every_url_requires_login(client, station_a, deliveries, name, method, data):
    url = reverse(name, args=[station_a.pk])

    response = _request(client, station_a, name, method, data)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"
    assert not Command.objects.exists()


@pytest.mark.parametrize(("name", "method", "data"), OPERATION_URLS, ids=IDS)
def test_another_cpo_gets_404(client, carol, station_a, deliveries, name, method, data):
    client.force_login(carol)

    response = _request(client, station_a, name, method, data)

    assert response.status_code == 404
    assert not Command.objects.exists()
    assert Station.objects.get(pk=station_a.pk).name == station_a.name


@pytest.mark.parametrize(("name", "method", "data"), OPERATION_URLS, ids=IDS)
def test_a_viewer_sees_everything_but_every_post_is_forbidden(
    client, bob, station_a, deliveries, name, method, data
):
    client.force_login(bob)

    response = _request(client, station_a, name, method, data)

    assert response.status_code == (200 if method == "get" else 403)
    assert not Command.objects.exists()
    assert Station.objects.get(pk=station_a.pk).name == station_a.name


# --- station settings ------------------------------------------------------------------


def test_settings_are_saved_through_the_service(client, alice, station_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(station_a, visible="on", free_usage="on"),
        follow=True,
    )

    assert response.redirect_chain == [(reverse("stations:detail", args=[station_a.pk]), 302)]
    assert "Settings of CP-OPS-1 saved." in response.content.decode()
    station = Station.objects.get(pk=station_a.pk)
    assert (station.name, station.street, station.postal_code) == (
        "Harbour charger",
        "Satamakatu 1",
        "00160",
    )
    assert (station.city, station.country) == ("Helsinki", "FI")
    assert (station.latitude, station.longitude) == (Decimal("60.167"), Decimal("24.955"))
    assert station.visible and station.free_usage and station.reservation_enabled
    connector = station.connectors.get()
    assert (connector.plug_type, connector.max_power_kw) == ("type2", Decimal("22.0"))


def test_unchecked_boxes_switch_settings_off(client, alice, station_a):
    Station.objects.filter(pk=station_a.pk).update(free_usage=True, reservation_enabled=True)
    client.force_login(alice)

    client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(station_a, reservation_enabled=""),
    )

    station = Station.objects.get(pk=station_a.pk)
    assert not station.free_usage and not station.reservation_enabled


def test_visible_without_an_address_is_refused_beside_the_switch(client, alice, station_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(station_a, street="", city="", visible="on"),
    )

    assert response.status_code == 400
    form = response.context["form"]
    assert "Missing: an address (street, city and country)." in form.errors["visible"][0]
    assert 'id="id_visible_error"' in response.content.decode()
    assert not Station.objects.get(pk=station_a.pk).visible


def test_visible_without_coordinates_names_what_is_missing(client, alice, station_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(station_a, latitude="", longitude="", name="", visible="on"),
    )

    assert response.status_code == 400
    assert "Missing: a name, coordinates." in response.context["form"].errors["visible"][0]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("latitude", "91", "less than or equal to 90"),
        ("longitude", "-180.5", "greater than or equal to -180"),
        ("latitude", "north", "Enter a number."),
        ("country", "Finland", "at most 2 characters"),
        ("country", "F1", "A two-letter country code"),
    ],
)
def test_bad_place_is_shown_beside_its_field(client, alice, station_a, field, value, message):
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(station_a, **{field: value}),
    )

    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors[field])
    assert Station.objects.get(pk=station_a.pk).street == ""


def test_only_one_coordinate_is_refused(client, alice, station_a):
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]), settings_data(station_a, longitude="")
    )

    assert response.status_code == 400
    assert response.context["form"].errors["longitude"] == [
        "Give both latitude and longitude, or neither."
    ]


def test_a_connectors_bad_power_is_shown_beside_it(client, alice, station_a):
    connector = station_a.connectors.get()
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(station_a, **{f"connector_{connector.pk}_max_power_kw": "0"}),
    )

    assert response.status_code == 400
    assert response.context["form"].errors[f"connector_{connector.pk}_max_power_kw"]
    assert Connector.objects.get(pk=connector.pk).max_power_kw is None


def test_service_errors_for_a_connector_land_beside_its_field(alice, station_a):
    from stations.forms import StationSettingsForm

    connector = station_a.connectors.get()
    form = StationSettingsForm(settings_data(station_a), station=station_a, connectors=[connector])
    assert form.is_valid()

    form.add_service_errors({f"connectors.{connector.pk}.plug_type": ["Unknown plug type."]})

    assert form.errors[f"connector_{connector.pk}_plug_type"] == ["Unknown plug type."]


def test_the_settings_page_shows_the_cbid_read_only_and_what_visibility_needs(
    client, alice, station_a
):
    client.force_login(alice)

    page = client.get(reverse("stations:settings", args=[station_a.pk])).content.decode()

    assert 'value="CP-OPS-1" readonly' in page
    assert "the station still needs an address (street, city and country), coordinates." in page
    assert "Save settings" in page


def test_a_viewer_sees_the_settings_disabled_and_no_save_button(client, bob, station_a):
    client.force_login(bob)

    response = client.get(reverse("stations:settings", args=[station_a.pk]))

    page = response.content.decode()
    assert "Save settings" not in page
    assert all(field.disabled for field in response.context["form"].fields.values())


# --- commands -------------------------------------------------------------------------


def command_post(client, station, kind, **fields):
    data = {"kind": kind, **{f"{kind}-{name}": value for name, value in fields.items()}}
    return client.post(reverse("stations:command", args=[station.pk]), data)


def test_reset_is_requested_and_the_page_comes_back_with_a_message(
    client, alice, station_a, deliveries, django_capture_on_commit_callbacks
):
    client.force_login(alice)

    with django_capture_on_commit_callbacks(execute=True):
        response = command_post(client, station_a, "reset", type="hard")

    assert response.status_code == 302
    assert response["Location"] == reverse("stations:detail", args=[station_a.pk]) + (
        "#command-history"
    )
    command = Command.objects.get()
    assert (command.action, command.payload) == ("Reset", {"type": "Hard"})
    assert command.requested_by == alice
    assert deliveries[0]["command_id"] == command.pk
    page = client.get(response["Location"]).content.decode()
    assert "Reset sent to CP-OPS-1." in page
    assert f'data-command="{command.pk}"' in page


@pytest.mark.parametrize(
    ("kind", "fields", "action", "payload"),
    [
        ("reset", {"type": "soft"}, "Reset", {"type": "Soft"}),
        (
            "trigger_message",
            {"message": "StatusNotification", "connector": "C1"},
            "TriggerMessage",
            {"requestedMessage": "StatusNotification", "connectorId": 1},
        ),
        (
            "trigger_message",
            {"message": "Heartbeat", "connector": "C1"},
            "TriggerMessage",
            {"requestedMessage": "Heartbeat"},
        ),
        ("get_configuration", {"keys": ""}, "GetConfiguration", {}),
        (
            "get_configuration",
            {"keys": "HeartbeatInterval, MeterValueSampleInterval"},
            "GetConfiguration",
            {"key": ["HeartbeatInterval", "MeterValueSampleInterval"]},
        ),
        (
            "change_configuration",
            {"key": "HeartbeatInterval", "value": "60"},
            "ChangeConfiguration",
            {"key": "HeartbeatInterval", "value": "60"},
        ),
        (
            "change_availability",
            {"target": "0", "availability": "inoperative"},
            "ChangeAvailability",
            {"connectorId": 0, "type": "Inoperative"},
        ),
        (
            "change_availability",
            {"target": "C1", "availability": "operative"},
            "ChangeAvailability",
            {"connectorId": 1, "type": "Operative"},
        ),
        ("unlock_connector", {"connector": "C1"}, "UnlockConnector", {"connectorId": 1}),
        (
            "remote_start",
            {"id_tag": "CARD-1", "connector": "C1"},
            "RemoteStartTransaction",
            {"idTag": "CARD-1", "connectorId": 1},
        ),
        ("remote_start", {"id_tag": "CARD-1"}, "RemoteStartTransaction", {"idTag": "CARD-1"}),
        ("clear_cache", {}, "ClearCache", {}),
    ],
)
def test_each_ocpp16_command_form_becomes_its_call(
    client, tess, station_a, deliveries, kind, fields, action, payload
):
    connector = station_a.connectors.get()
    fields = {k: str(connector.pk) if v == "C1" else v for k, v in fields.items()}
    # A remote start is sent only for a tag the backend would accept.
    IdTag.objects.create(cpo=station_a.cpo, tag="CARD-1")
    client.force_login(tess)

    response = command_post(client, station_a, kind, **fields)

    assert response.status_code == 302, response.content.decode()[:3000]
    command = Command.objects.get()
    assert (command.action, command.payload) == (action, payload)


def test_remote_stop_stops_the_current_transaction(client, alice, station_a, deliveries):
    from stations.models import Transaction

    tx = Transaction.objects.create(
        station=station_a, connector=station_a.connectors.get(), id_tag="CARD-1", meter_start=0
    )
    client.force_login(alice)

    response = command_post(client, station_a, "remote_stop", transaction=str(tx.pk))

    assert response.status_code == 302
    command = Command.objects.get()
    assert (command.action, command.payload) == ("RemoteStopTransaction", {"transactionId": tx.pk})


def test_ocpp2_commands_are_mapped_to_their_2x_actions(client, alice, cpo_a, deliveries):
    station = make_station(
        "CP-V2", cpo=cpo_a, ocpp_version="2.0.1", connected=True, channel_name="c2"
    )
    connector = Connector.objects.create(station=station, evse_id=1, connector_id=1)
    IdTag.objects.create(cpo=cpo_a, tag="CARD-2")
    client.force_login(alice)

    command_post(
        client, station, "change_configuration", key="OCPPCommCtrlr.HeartbeatInterval", value="90"
    )
    command_post(client, station, "get_base_report", report_base="FullInventory")
    command_post(client, station, "remote_start", id_tag="CARD-2", connector=str(connector.pk))
    command_post(client, station, "unlock_connector", connector=str(connector.pk))

    actions = list(Command.objects.order_by("id").values_list("action", "payload"))
    assert actions[0] == (
        "SetVariables",
        {
            "setVariableData": [
                {
                    "attributeValue": "90",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        },
    )
    assert actions[1][0] == "GetBaseReport"
    assert actions[1][1]["reportBase"] == "FullInventory"
    assert actions[2][0] == "RequestStartTransaction"
    assert actions[2][1]["evseId"] == 1 and actions[2][1]["idToken"]["idToken"] == "CARD-2"
    assert actions[3] == ("UnlockConnector", {"evseId": 1, "connectorId": 1})


def test_the_page_offers_the_commands_of_the_stations_version(client, alice, cpo_a, station_a):
    v2 = make_station("CP-V2", cpo=cpo_a, ocpp_version="2.0.1", connected=True, channel_name="c2")
    client.force_login(alice)

    page16 = client.get(reverse("stations:detail", args=[station_a.pk])).content.decode()
    page2 = client.get(reverse("stations:detail", args=[v2.pk])).content.decode()

    for name in ("GetConfiguration", "ChangeConfiguration", "RemoteStartTransaction"):
        assert f'<legend class="command-title">{name}</legend>' in page16
    assert 'id="command-get_base_report"' not in page16
    for name in ("GetVariables", "SetVariables", "RequestStartTransaction", "GetBaseReport"):
        assert f'<legend class="command-title">{name}</legend>' in page2
    assert "ChangeConfiguration</legend>" not in page2


def test_a_form_error_is_shown_on_the_page_and_nothing_is_recorded(
    client, alice, station_a, deliveries
):
    client.force_login(alice)

    response = command_post(client, station_a, "change_configuration", key="", value="1")

    assert response.status_code == 400
    assert response.context["command_form_failed"].errors["key"]
    assert 'command-form command-form-invalid" id="command-change_configuration"' in (
        response.content.decode()
    )
    assert not Command.objects.exists()


def test_a_value_the_service_refuses_is_a_form_error(client, alice, cpo_a, deliveries):
    station = make_station(
        "CP-V2", cpo=cpo_a, ocpp_version="2.0.1", connected=True, channel_name="c2"
    )
    client.force_login(alice)

    # OCPP 2.x keys are Component.Variable: the service raises ValueError for a bare name.
    response = command_post(client, station, "change_configuration", key="Heartbeat", value="1")

    assert response.status_code == 400
    errors = response.context["command_form_failed"].non_field_errors()
    assert "Component.Variable" in errors[0]
    assert not Command.objects.exists()


def test_an_unknown_kind_changes_nothing(client, alice, station_a, deliveries):
    client.force_login(alice)

    response = client.post(reverse("stations:command", args=[station_a.pk]), {"kind": "format_c"})

    assert response.status_code == 302
    assert not Command.objects.exists()


def test_an_offline_station_records_the_command_offline_at_once(client, alice, cpo_a, deliveries):
    station = make_station("CP-OFF", cpo=cpo_a, connected=False)
    client.force_login(alice)

    response = command_post(client, station, "reset", type="soft")

    command = Command.objects.get()
    assert command.status == Command.Status.OFFLINE
    assert deliveries == []
    page = client.get(response["Location"]).content.decode()
    assert "CP-OFF is offline: Reset was not sent." in page


def test_an_offline_stations_commands_are_disabled_with_an_explanation(client, alice, cpo_a):
    station = make_station("CP-OFF", cpo=cpo_a, connected=False)
    client.force_login(alice)

    page = client.get(reverse("stations:detail", args=[station.pk])).content.decode()

    assert "The station is offline." in page
    assert page.count("<fieldset disabled>") == page.count('class="command-form')


def test_a_pending_station_offers_only_configuration_and_trigger_commands(client, alice, cpo_a):
    station = make_station(
        "CP-PEND",
        cpo=cpo_a,
        registration_status=RegistrationStatus.PENDING,
        connected=True,
        channel_name="c",
    )
    client.force_login(alice)

    response = client.get(reverse("stations:detail", args=[station.pk]))

    kinds = [form.kind for form in response.context["command_forms"]]
    assert kinds == ["trigger_message", "get_configuration", "change_configuration"]
    assert "not Accepted" in response.content.decode()


def test_a_viewer_gets_no_command_forms(client, bob, station_a):
    client.force_login(bob)

    response = client.get(reverse("stations:detail", args=[station_a.pk]))

    assert response.context["command_forms"] == []
    assert "only its CPO's admins and technicians send commands" in response.content.decode()


# --- station log ----------------------------------------------------------------------


def log_message(station, action, *, age=timedelta(minutes=1), message_type=2, direction="in"):
    return OcppMessage.objects.create(
        station=station,
        cbid=station.cbid,
        direction=direction,
        message_type=message_type,
        action=action,
        unique_id=f"id-{action}",
        payload={"action": action, "nested": {"a": 1}},
        created_at=timezone.now() - age,
    )


def test_the_log_is_newest_first_with_readable_payloads(client, alice, station_a):
    log_message(station_a, "BootNotification", age=timedelta(minutes=5))
    log_message(
        station_a, "StatusNotification", age=timedelta(minutes=1), direction="out", message_type=3
    )
    client.force_login(alice)

    page = client.get(reverse("stations:log", args=[station_a.pk])).content.decode()

    assert page.index("StatusNotification") < page.index("BootNotification")
    assert "CALLRESULT" in page and "CALL<" in page
    assert "id id-BootNotification" in page
    assert "{\n  &quot;action&quot;: &quot;BootNotification&quot;,\n  &quot;nested&quot;: {" in page


def test_the_log_names_the_ocpp_21_frame_types(client, alice, station_a):
    log_message(station_a, "Heartbeat", message_type=5)
    log_message(station_a, "NotifyPeriodicEventStream", message_type=6)
    client.force_login(alice)

    page = client.get(reverse("stations:log", args=[station_a.pk])).content.decode()

    assert '<span class="chip chip-msg-5">CALLRESULTERROR</span>' in page
    assert '<span class="chip chip-msg-6">SEND</span>' in page


def test_the_log_shows_the_last_24_hours_unless_asked_for_more(client, alice, station_a):
    log_message(station_a, "BootNotification", age=timedelta(days=2))
    log_message(station_a, "Authorize", age=timedelta(hours=3))
    client.force_login(alice)
    url = reverse("stations:log", args=[station_a.pk])

    default = client.get(url).content.decode()
    hour = client.get(url, {"since": "1h"}).content.decode()
    week = client.get(url, {"since": "7d"}).content.decode()

    assert "Authorize" in default and "BootNotification" not in default
    assert "Authorize" not in hour
    assert "Authorize" in week and "BootNotification" in week


def test_the_log_filter_hides_heartbeats_and_meter_values(client, alice, station_a):
    for action in ("Heartbeat", "MeterValues", "StartTransaction"):
        log_message(station_a, action)
    client.force_login(alice)
    url = reverse("stations:log", args=[station_a.pk])

    everything = client.get(url).content.decode()
    quiet = client.get(url, {"quiet": "1"}).content.decode()

    assert "id-Heartbeat" in everything and "id-MeterValues" in everything
    assert "id-Heartbeat" not in quiet and "id-MeterValues" not in quiet
    assert "id-StartTransaction" in quiet


def test_the_log_is_paginated_and_keeps_its_filters(client, alice, station_a):
    for i in range(55):
        log_message(station_a, f"Act{i:02d}", age=timedelta(seconds=i + 1))
    client.force_login(alice)
    url = reverse("stations:log", args=[station_a.pk])

    first = client.get(url, {"since": "1h", "quiet": "1"})
    second = client.get(url, {"since": "1h", "quiet": "1", "page": 2}).content.decode()

    assert len(first.context["rows"]) == 50
    assert "?since=1h&amp;quiet=1&amp;page=2" in first.content.decode()
    assert "id-Act54" in second and "id-Act00" not in second


def test_the_log_page_runs_a_fixed_number_of_queries(
    client, alice, station_a, django_assert_num_queries
):
    client.force_login(alice)
    url = reverse("stations:log", args=[station_a.pk])
    log_message(station_a, "Heartbeat")
    client.get(url)  # warm the session

    def queries() -> int:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for i in range(30):
        log_message(station_a, f"Act{i}", message_type=[2, 3, 4][i % 3])
    assert queries() == few


def test_precise_coordinates_and_power_are_rounded_not_refused(client, alice, station_a):
    connector = station_a.connectors.get()
    client.force_login(alice)

    response = client.post(
        reverse("stations:settings", args=[station_a.pk]),
        settings_data(
            station_a,
            latitude="60.16985712",
            **{f"connector_{connector.pk}_max_power_kw": "22.04"},
        ),
    )

    assert response.status_code == 302
    assert Station.objects.get(pk=station_a.pk).latitude == Decimal("60.169857")
    assert Connector.objects.get(pk=connector.pk).max_power_kw == Decimal("22.0")


def test_a_command_to_a_station_without_ocpp_is_refused_with_a_message(
    client, alice, cpo_a, deliveries
):
    ensto = make_station("ENSTO-1", cpo=cpo_a, protocol="ensto", ocpp_version="", connected=True)
    client.force_login(alice)

    response = command_post(client, ensto, "reset", type="soft")

    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Reset was not sent: Ensto stations take no OCPP commands." in page
    assert not Command.objects.exists()


@pytest.mark.parametrize(
    ("tag_fields", "reason"),
    [
        (None, "not one of this CPO's tags"),
        ({"status": "Blocked"}, "blocked"),
    ],
)
def test_a_remote_start_the_backend_would_refuse_is_not_sent(
    client, alice, station_a, deliveries, tag_fields, reason
):
    if tag_fields is not None:
        IdTag.objects.create(cpo=station_a.cpo, tag="CARD-9", **tag_fields)
    client.force_login(alice)

    response = command_post(client, station_a, "remote_start", id_tag="CARD-9")

    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "Not sent: " in page
    assert reason in page
    assert not Command.objects.exists()
