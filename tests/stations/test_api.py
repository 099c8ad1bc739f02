"""The public stations API, and the staff commands API."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from django.test import Client

from stations.models import Command, Connector
from stations.services import commands as commands_module
from tests.factories import make_station

pytestmark = pytest.mark.django_db

PLACE = {
    "street": "Satamakatu 1",
    "postal_code": "00160",
    "city": "Helsinki",
    "country": "FI",
    "latitude": Decimal("60.1675"),
    "longitude": Decimal("24.9525"),
}


def visible_station(cbid, cpo, **fields):
    station = make_station(
        cbid,
        cpo=cpo,
        visible=True,
        connected=True,
        channel_name=f"chan.{cbid}",
        vendor="SecretVendor",
        **(PLACE | fields),
    )
    Connector.objects.create(
        station=station,
        connector_id=1,
        status="Available",
        plug_type="ccs",
        max_power_kw=Decimal("150"),
    )
    Connector.objects.create(station=station, connector_id=2, status="Charging", plug_type="type2")
    return station


def test_list_shows_visible_stations_with_place_and_connectors(client, cpo_a):
    station = visible_station("CP-PUB-1", cpo_a, name="Harbour")

    data = client.get("/api/stations/").json()

    assert data["next"] is None
    assert data["stations"] == [
        {
            "id": str(station.public_id),
            "name": "Harbour",
            "address": {
                "street": "Satamakatu 1",
                "postal_code": "00160",
                "city": "Helsinki",
                "country": "FI",
            },
            "coordinates": {"latitude": 60.1675, "longitude": 24.9525},
            "connectors": [
                {
                    "evse_id": None,
                    "connector_id": 1,
                    "plug_type": "ccs",
                    "plug_type_name": "CCS Combo 2",
                    "max_power_kw": 150.0,
                    "availability": "available",
                },
                {
                    "evse_id": None,
                    "connector_id": 2,
                    "plug_type": "type2",
                    "plug_type_name": "Type 2",
                    "max_power_kw": None,
                    "availability": "occupied",
                },
            ],
        }
    ]


def test_hidden_and_pool_stations_are_not_listed(client, cpo_a):
    make_station("CP-HIDDEN", cpo=cpo_a, visible=False, **PLACE)
    make_station("CP-POOLVIS", visible=True, **PLACE)  # visible flag without a CPO
    shown = visible_station("CP-SHOWN", cpo_a)

    ids = [s["id"] for s in client.get("/api/stations/").json()["stations"]]

    assert ids == [str(shown.public_id)]


def test_response_carries_no_cbid_nor_internal_details(client, cpo_a):
    station = visible_station("CBID-MUST-NOT-LEAK", cpo_a, name="Harbour")

    listing = client.get("/api/stations/").content.decode()
    detail = client.get(f"/api/stations/{station.public_id}/").content.decode()

    for body in (listing, detail):
        assert "CBID-MUST-NOT-LEAK" not in body
        assert "cbid" not in body.lower()
        assert "SecretVendor" not in body
        assert "chan." not in body
        assert "CPO A" not in body


def test_list_takes_a_fixed_number_of_queries(client, cpo_a, django_assert_num_queries):
    for n in range(5):
        visible_station(f"CP-Q{n}", cpo_a)
    with django_assert_num_queries(2):
        response = client.get("/api/stations/")
    assert len(response.json()["stations"]) == 5


def test_list_is_paginated(client, cpo_a, monkeypatch):
    from stations import api

    monkeypatch.setattr(api, "PAGE_SIZE", 2)
    for n in range(3):
        visible_station(f"CP-P{n}", cpo_a)

    first = client.get("/api/stations/").json()
    second = client.get(first["next"]).json()

    assert len(first["stations"]) == 2
    assert first["next"] == "http://testserver/api/stations/?page=2"
    assert len(second["stations"]) == 1 and second["next"] is None
    assert client.get("/api/stations/?page=x").status_code == 400


@pytest.mark.parametrize(
    ("connected", "station_status", "connector_status", "expected"),
    [
        (True, "", "Available", "available"),
        (True, "", "Preparing", "occupied"),
        (True, "", "SuspendedEV", "occupied"),
        (True, "", "Occupied", "occupied"),
        (True, "", "Reserved", "occupied"),
        (True, "", "Faulted", "out_of_order"),
        (True, "", "Unavailable", "out_of_order"),
        (True, "Unavailable", "Available", "out_of_order"),
        (True, "", "", "unknown"),
        (False, "", "Available", "unknown"),
    ],
)
def test_availability_follows_status(
    client, cpo_a, connected, station_status, connector_status, expected
):
    station = make_station(
        "CP-AV", cpo=cpo_a, visible=True, connected=connected, status=station_status, **PLACE
    )
    Connector.objects.create(station=station, connector_id=1, status=connector_status)

    data = client.get(f"/api/stations/{station.public_id}/").json()

    assert data["connectors"][0]["availability"] == expected


def test_detail_of_a_hidden_station_is_404(client, cpo_a):
    station = make_station("CP-HID", cpo=cpo_a, visible=False, **PLACE)
    assert client.get(f"/api/stations/{station.public_id}/").status_code == 404


def test_public_api_is_read_only(client, cpo_a):
    station = visible_station("CP-RO", cpo_a)
    assert client.post("/api/stations/").status_code == 405
    assert client.delete(f"/api/stations/{station.public_id}/").status_code == 405


def test_stations_are_named_by_a_random_public_id_not_the_database_id(client, cpo_a):
    first, second = visible_station("CP-ID-1", cpo_a), visible_station("CP-ID-2", cpo_a)

    listed = [s["id"] for s in client.get("/api/stations/").json()["stations"]]

    assert listed == [str(first.public_id), str(second.public_id)]
    assert all(uuid.UUID(public_id).version == 4 for public_id in listed)
    assert client.get(f"/api/stations/{first.public_id}/").json()["id"] == listed[0]
    # The database id names nothing there.
    assert client.get(f"/api/stations/{first.pk}/").status_code == 404
    assert client.get(f"/api/stations/{uuid.uuid4()}/").status_code == 404


def test_another_site_may_read_the_public_api(client, cpo_a):
    station = visible_station("CP-CORS", cpo_a)
    origin = {"HTTP_ORIGIN": "https://map.example.org"}

    for url in ("/api/stations/", f"/api/stations/{station.public_id}/"):
        response = client.get(url, **origin)
        assert response.status_code == 200
        assert response["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in response
    missing = client.get(f"/api/stations/{uuid.uuid4()}/", **origin)
    assert (missing.status_code, missing["Access-Control-Allow-Origin"]) == (404, "*")


def test_the_cors_preflight_is_answered(client, cpo_a):
    response = client.options(
        "/api/stations/",
        HTTP_ORIGIN="https://map.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-requested-with, accept",
    )

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Allow-Methods"] == "GET, HEAD, OPTIONS"
    assert response["Access-Control-Allow-Headers"] == "x-requested-with, accept"
    assert int(response["Access-Control-Max-Age"]) > 0


def test_a_malformed_preflight_header_list_is_not_echoed(client):
    response = client.options(
        "/api/stations/",
        HTTP_ORIGIN="https://map.example.org",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-ok\r\nSet-Cookie: a=b",
    )

    assert response.status_code == 204
    assert "Access-Control-Allow-Headers" not in response


def test_the_staff_api_sends_no_cors_headers(client, alice, cpo_a):
    station = make_station("CP-STAFF", cpo=cpo_a)
    client.force_login(alice)

    response = client.get(f"/api/stations/{station.pk}/commands/", HTTP_ORIGIN="https://x.org")

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response


# ---- commands ---------------------------------------------------------------------------


@pytest.fixture
def online(cpo_a):
    return make_station("CP-CMD", cpo=cpo_a, connected=True, channel_name="chan.cmd")


@pytest.fixture
def deliveries(monkeypatch):
    sent: list[dict] = []
    monkeypatch.setattr(commands_module, "station_notify", lambda **kwargs: sent.append(kwargs))
    return sent


def post_command(client, station, kind, params):
    return client.post(
        f"/api/stations/{station.pk}/commands/",
        data=json.dumps({"kind": kind, "params": params}),
        content_type="application/json",
    )


def test_admin_posts_a_command(client, online, alice, deliveries):
    client.force_login(alice)
    response = post_command(client, online, "reset", {"type": "soft"})

    assert response.status_code == 201
    body = response.json()
    assert body["action"] == "Reset" and body["status"] == "queued"
    assert body["requested_by"] == "alice"
    assert Command.objects.get(pk=body["id"]).station == online


def test_command_post_requires_login(client, online, deliveries):
    assert post_command(client, online, "reset", {"type": "soft"}).status_code == 401
    assert client.get(f"/api/stations/{online.pk}/commands/").status_code == 401
    assert Command.objects.count() == 0


def test_viewer_reads_commands_but_cannot_post(client, online, bob, deliveries):
    client.force_login(bob)
    assert client.get(f"/api/stations/{online.pk}/commands/").status_code == 200
    assert post_command(client, online, "reset", {"type": "soft"}).status_code == 403
    assert Command.objects.count() == 0


def test_other_cpo_gets_404(client, online, carol, deliveries):
    client.force_login(carol)
    assert post_command(client, online, "reset", {"type": "soft"}).status_code == 404
    assert client.get(f"/api/stations/{online.pk}/commands/").status_code == 404
    assert Command.objects.count() == 0


def test_command_post_needs_csrf_token(online, alice, deliveries):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert post_command(client, online, "reset", {"type": "soft"}).status_code == 403
    assert Command.objects.count() == 0


def test_invalid_command_is_a_400(client, online, alice, deliveries):
    client.force_login(alice)
    response = post_command(client, online, "reset", {"type": "gentle"})
    assert response.status_code == 400
    assert "soft or hard" in response.json()["error"]
    bad_json = client.post(
        f"/api/stations/{online.pk}/commands/", data="{", content_type="application/json"
    )
    assert bad_json.status_code == 400


def test_a_remote_start_with_an_unknown_tag_is_a_400_with_the_reason(
    client, online, alice, deliveries
):
    client.force_login(alice)
    response = post_command(client, online, "remote_start", {"id_tag": "NOBODY"})
    assert response.status_code == 400
    assert "not one of this CPO's tags" in response.json()["error"]
    assert Command.objects.count() == 0


def test_command_history_and_detail(client, online, alice, bob, deliveries):
    client.force_login(alice)
    created = post_command(client, online, "clear_cache", {}).json()
    client.force_login(bob)

    history = client.get(f"/api/stations/{online.pk}/commands/").json()["commands"]
    detail = client.get(f"/api/stations/{online.pk}/commands/{created['id']}/").json()

    assert [c["id"] for c in history] == [created["id"]]
    assert detail["action"] == "ClearCache"
    assert detail["created_at"].endswith("Z")
