"""Station settings: validation, the visibility rule, who may change them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from cpo.models import Membership
from stations.models import Connector, Station
from stations.services import station_settings as settings_module
from stations.services.notify import DeliveryFailed
from stations.services.station_settings import SettingsError, station_settings_update
from tests.factories import make_member, make_station, make_user

pytestmark = pytest.mark.django_db

PLACE = {
    "name": "Harbour",
    "street": "Satamakatu 1",
    "postal_code": "00160",
    "city": "Helsinki",
    "country": "fi",
    "latitude": "60.1675",
    "longitude": "24.9525",
}


@pytest.fixture
def station(cpo_a):
    return make_station("CP-SET", cpo=cpo_a)


@pytest.fixture
def refreshes(monkeypatch):
    sent: list[dict] = []

    def fake_notify(*, channel_name, event_type, **data):
        sent.append({"channel_name": channel_name, "type": event_type})

    monkeypatch.setattr(settings_module, "station_notify", fake_notify)
    return sent


def test_admin_sets_place_and_makes_the_station_visible(station, alice):
    updated = station_settings_update(station=station, user=alice, data=PLACE | {"visible": True})

    station.refresh_from_db()
    assert station.visible is True
    assert (station.name, station.city, station.country) == ("Harbour", "Helsinki", "FI")
    assert station.latitude == Decimal("60.167500")
    assert updated.longitude == Decimal("24.952500")


def test_technician_may_change_settings(station, cpo_a):
    tech = make_user("tess")
    make_member(tech, cpo_a, Membership.Role.TECHNICIAN)
    station_settings_update(station=station, user=tech, data={"free_usage": True})
    station.refresh_from_db()
    assert station.free_usage is True


@pytest.mark.parametrize("who", ["bob", "carol"])
def test_viewer_and_other_cpo_may_not_change_settings(request, station, who):
    with pytest.raises(PermissionDenied):
        station_settings_update(
            station=station, user=request.getfixturevalue(who), data={"name": "Mine"}
        )
    station.refresh_from_db()
    assert station.name == "Station CP-SET"


def test_visible_needs_address_and_coordinates(station, alice):
    with pytest.raises(SettingsError) as caught:
        station_settings_update(station=station, user=alice, data={"visible": True})

    missing = caught.value.errors["visible"][0].split("Missing:")[1]
    assert "address" in missing
    assert "coordinates" in missing
    assert "a name" not in missing  # it has one
    station.refresh_from_db()
    assert station.visible is False


def test_pool_station_cannot_be_visible_even_for_a_superuser(root):
    pooled = make_station("CP-POOL", name="Pooled")
    with pytest.raises(SettingsError) as caught:
        station_settings_update(station=pooled, user=root, data=PLACE | {"visible": True})
    assert caught.value.errors["visible"][0].endswith("Missing: a CPO.")


def test_clearing_the_address_of_a_visible_station_is_refused(station, alice):
    station_settings_update(station=station, user=alice, data=PLACE | {"visible": True})
    with pytest.raises(SettingsError) as caught:
        station_settings_update(station=station, user=alice, data={"street": "", "name": " "})
    missing = caught.value.errors["visible"][0].split("Missing:")[1]
    assert "a name" in missing and "address" in missing
    station.refresh_from_db()
    assert station.street == "Satamakatu 1"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"latitude": "91", "longitude": "0"}, "latitude", "between -90 and 90"),
        ({"latitude": "0", "longitude": "-180.5"}, "longitude", "between -180 and 180"),
        ({"latitude": "north", "longitude": "1"}, "latitude", "number"),
        ({"latitude": "NaN", "longitude": "1"}, "latitude", "between"),
        ({"latitude": "60.1"}, "longitude", "both"),
        ({"country": "Finland"}, "country", "two-letter"),
        ({"name": "x" * 101}, "name", "100"),
        ({"free_usage": "maybe"}, "free_usage", "true or false"),
    ],
)
def test_invalid_values_are_refused_per_field(station, alice, data, field, message):
    with pytest.raises(SettingsError) as caught:
        station_settings_update(station=station, user=alice, data=data)
    assert message in " ".join(caught.value.errors[field])


def test_an_error_changes_nothing(station, alice):
    with pytest.raises(SettingsError):
        station_settings_update(
            station=station, user=alice, data={"city": "Espoo", "latitude": 100}
        )
    station.refresh_from_db()
    assert station.city == ""


def test_coordinates_accept_a_comma_and_clear_together(station, alice):
    station_settings_update(station=station, user=alice, data={"latitude": "60,5", "longitude": 25})
    station.refresh_from_db()
    assert (station.latitude, station.longitude) == (Decimal("60.5"), Decimal("25"))
    station_settings_update(station=station, user=alice, data={"latitude": "", "longitude": None})
    station.refresh_from_db()
    assert station.latitude is None and station.longitude is None


def test_connector_plug_type_and_power(station, alice):
    one = Connector.objects.create(station=station, connector_id=1)
    two = Connector.objects.create(station=station, connector_id=2, max_power_kw=Decimal("11"))

    station_settings_update(
        station=station,
        user=alice,
        data={
            "connectors": [
                {"id": one.pk, "plug_type": "ccs", "max_power_kw": "150"},
                {"id": two.pk, "max_power_kw": 22.04},
            ]
        },
    )
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.plug_type, one.max_power_kw) == ("ccs", Decimal("150.0"))
    assert (two.plug_type, two.max_power_kw) == ("", Decimal("22.0"))


def test_bad_connector_values_are_refused_per_connector(station, alice, cpo_a):
    one = Connector.objects.create(station=station, connector_id=1)
    other = Connector.objects.create(station=make_station("CP-X", cpo=cpo_a), connector_id=1)

    with pytest.raises(SettingsError) as caught:
        station_settings_update(
            station=station,
            user=alice,
            data={
                "connectors": [
                    {"id": one.pk, "plug_type": "usb", "max_power_kw": "-3"},
                    {"id": other.pk, "plug_type": "ccs"},
                ]
            },
        )
    errors = caught.value.errors
    assert errors[f"connectors.{one.pk}.plug_type"] == ["Unknown plug type."]
    assert "more than 0" in errors[f"connectors.{one.pk}.max_power_kw"][0]
    assert "not one of this station's" in errors["connectors"][0]
    other.refresh_from_db()
    assert other.plug_type == ""


def test_free_usage_change_tells_the_connected_charger(
    cpo_a, alice, refreshes, django_capture_on_commit_callbacks
):
    station = make_station("CP-LIVE", cpo=cpo_a, connected=True, channel_name="chan.live")
    with django_capture_on_commit_callbacks(execute=True):
        station_settings_update(station=station, user=alice, data={"free_usage": True})
    assert refreshes == [{"channel_name": "chan.live", "type": "station.refresh"}]


def test_other_changes_do_not_bother_the_charger(
    cpo_a, alice, refreshes, django_capture_on_commit_callbacks
):
    station = make_station("CP-LIVE", cpo=cpo_a, connected=True, channel_name="chan.live")
    with django_capture_on_commit_callbacks(execute=True):
        station_settings_update(station=station, user=alice, data={"city": "Turku"})
        station_settings_update(station=station, user=alice, data={"free_usage": False})
    assert refreshes == []


def test_unreachable_gateway_does_not_undo_the_setting(
    cpo_a, alice, monkeypatch, django_capture_on_commit_callbacks
):
    station = make_station("CP-LIVE", cpo=cpo_a, connected=True, channel_name="chan.live")

    def redis_down(**kwargs):
        raise DeliveryFailed("Connection refused")

    monkeypatch.setattr(settings_module, "station_notify", redis_down)
    with django_capture_on_commit_callbacks(execute=True):
        station_settings_update(station=station, user=alice, data={"free_usage": True})
    assert Station.objects.get(pk=station.pk).free_usage is True
