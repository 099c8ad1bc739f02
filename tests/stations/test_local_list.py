"""The local authorization list: full then differential sends with versions, the charger's
answers (VersionMismatch, Failed, NotSupported), GetLocalListVersion, sync state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ocpp_spec.commands import build_call, interpret_result
from stations.models import Command, IdTag
from stations.services.command_outcomes import CommandOutcome, command_outcome_dispatch
from stations.services.local_list import (
    REFUSALS,
    local_list_params,
    local_list_state,
    local_list_sync_all,
)
from tests.factories import make_station

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["1.6", "2.0.1"])
def station(request, cpo_a):
    return make_station(
        "CP-LL", cpo=cpo_a, ocpp_version=request.param, connected=True, channel_name="c-ll"
    )


def answer(station, params: dict, response: dict | None) -> None:
    """The charger's answer to a SendLocalList with `params`, as the recorder reports it."""
    action, payload = build_call(station.ocpp_version, "send_local_list", params)
    status = interpret_result(station.ocpp_version, "send_local_list", response or {})
    command_outcome_dispatch(
        CommandOutcome(
            command_id=0,
            station_id=station.pk,
            kind="send_local_list",
            action=action,
            payload=payload,
            status=status,
            response=response,
        )
    )
    station.refresh_from_db()


def test_first_send_is_full_then_differential_with_the_next_version(station, cpo_a):
    IdTag.objects.create(
        cpo=cpo_a, tag="VAN-12", parent_id_tag="FLEET", expiry_date=datetime(2030, 1, 1, tzinfo=UTC)
    )
    IdTag.objects.create(cpo=cpo_a, tag="ALICE", status="Blocked")
    assert local_list_state(station=station).in_sync is False

    full = local_list_params(station=station)
    assert (full["version"], full["update_type"], len(full["entries"])) == (1, "Full", 2)
    answer(station, full, {"status": "Accepted"})
    state = local_list_state(station=station)
    assert (state.version, state.in_sync, state.status) == (1, True, "Accepted")

    IdTag.objects.filter(tag="ALICE").delete()
    IdTag.objects.create(cpo=cpo_a, tag="NEW-1")
    assert local_list_state(station=station).changes == 2
    diff = local_list_params(station=station)
    assert (diff["version"], diff["update_type"]) == (2, "Differential")
    assert {(e["id_tag"], e["status"]) for e in diff["entries"]} == {
        ("NEW-1", "Accepted"),
        ("ALICE", None),
    }
    action, payload = build_call(station.ocpp_version, "send_local_list", diff)
    assert action == "SendLocalList"
    answer(station, diff, {"status": "Accepted"})
    assert local_list_state(station=station).in_sync
    assert station.local_list_version == 2
    assert set(station.local_list) == {"van-12", "new-1"}


def test_payloads_per_version(cpo_a):
    params = {
        "version": 3,
        "update_type": "Differential",
        "entries": [
            {"id_tag": "A", "status": "Accepted", "expiry": "2030-01-01T00:00:00Z", "parent": "G"},
            {"id_tag": "B", "status": None, "token_type": "eMAID"},
        ],
    }
    assert build_call("1.6", "send_local_list", params) == (
        "SendLocalList",
        {
            "listVersion": 3,
            "updateType": "Differential",
            "localAuthorizationList": [
                {
                    "idTag": "A",
                    "idTagInfo": {
                        "status": "Accepted",
                        "expiryDate": "2030-01-01T00:00:00Z",
                        "parentIdTag": "G",
                    },
                },
                {"idTag": "B"},
            ],
        },
    )
    assert build_call("2.0.1", "send_local_list", params) == (
        "SendLocalList",
        {
            "versionNumber": 3,
            "updateType": "Differential",
            "localAuthorizationList": [
                {
                    "idToken": {"idToken": "A", "type": "ISO14443"},
                    "idTokenInfo": {
                        "status": "Accepted",
                        "cacheExpiryDateTime": "2030-01-01T00:00:00Z",
                        "groupIdToken": {"idToken": "G", "type": "Central"},
                    },
                },
                {"idToken": {"idToken": "B", "type": "eMAID"}},
            ],
        },
    )
    assert build_call("1.6", "get_local_list_version", {}) == ("GetLocalListVersion", {})
    assert build_call("2.1", "get_local_list_version", {}) == ("GetLocalListVersion", {})


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize(
    ("status", "meaning"), [("Accepted", "accepted"), ("VersionMismatch", "rejected")]
)
def test_answers_are_interpreted(version, status, meaning):
    assert interpret_result(version, "send_local_list", {"status": status}) == meaning


def test_too_long_tags_stay_off_1_6_lists(cpo_a):
    station = make_station("CP-16", cpo=cpo_a, ocpp_version="1.6")
    IdTag.objects.create(cpo=cpo_a, tag="X" * 21)
    IdTag.objects.create(cpo=cpo_a, tag="SHORT")
    assert [e["id_tag"] for e in local_list_params(station=station)["entries"]] == ["SHORT"]


@pytest.mark.parametrize("refusal", ["VersionMismatch", "Failed", "NotSupported"])
def test_a_refused_list_is_shown_and_a_full_resend_offered(client, alice, station, cpo_a, refusal):
    IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    answer(station, local_list_params(station=station), {"status": "Accepted"})
    IdTag.objects.create(cpo=cpo_a, tag="NEW-1")
    diff = local_list_params(station=station)
    answer(station, diff, {"status": refusal})
    state = local_list_state(station=station)
    assert (state.status, state.in_sync, state.needs_full) == (refusal, False, True)
    assert state.refusal
    # What the charger held stays what the backend believes it holds.
    assert station.local_list_version == 1
    assert local_list_params(station=station)["update_type"] == "Full"
    assert local_list_params(station=station)["version"] == 2

    client.force_login(alice)
    page = client.get(f"/stations/{station.pk}/").content.decode()
    assert refusal in page
    assert "Resend the full list" in page
    assert "Out of sync" in page


def test_get_local_list_version_is_kept_and_a_mismatch_means_out_of_sync(station, cpo_a):
    IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    answer(station, local_list_params(station=station), {"status": "Accepted"})
    key = "listVersion" if station.ocpp_version == "1.6" else "versionNumber"
    command_outcome_dispatch(
        CommandOutcome(
            command_id=0,
            station_id=station.pk,
            kind="get_local_list_version",
            action="GetLocalListVersion",
            payload={},
            status="accepted",
            response={key: 7},
        )
    )
    station.refresh_from_db()
    state = local_list_state(station=station)
    assert (state.reported_version, state.in_sync, state.needs_full) == (7, False, True)
    assert local_list_params(station=station)["version"] == 8


def test_sync_all_sends_only_to_connected_stations_out_of_sync(cpo_a, alice, monkeypatch):
    monkeypatch.setattr(
        "stations.services.commands.station_notify", lambda *args, **kwargs: None, raising=False
    )
    IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    online = make_station("CP-ON", cpo=cpo_a, ocpp_version="1.6", connected=True, channel_name="x")
    make_station("CP-OFF", cpo=cpo_a, ocpp_version="2.0.1")
    synced = make_station("CP-OK", cpo=cpo_a, ocpp_version="1.6", connected=True, channel_name="y")
    answer(synced, local_list_params(station=synced), {"status": "Accepted"})

    result = local_list_sync_all(cpo=cpo_a, user=alice)

    assert (result.sent, result.in_sync, result.offline) == (1, 1, 1)
    command = Command.objects.get()
    assert command.station_id == online.pk
    assert command.action == "SendLocalList"


def test_the_station_page_says_why_the_backend_refused_a_session(client, alice, cpo_a):
    from stations.models import Transaction
    from stations.services.transactions import transaction_start, transaction_stop

    station = make_station("CP-DEAUTH", cpo=cpo_a, ocpp_version="1.6")
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    tx, info = transaction_start(
        station_id=station.pk, connector_id=1, id_tag="NOBODY", meter_start=0, timestamp=at
    )
    assert info.status == "Invalid"
    transaction_stop(
        station_id=station.pk,
        transaction_id=tx.pk,
        meter_stop=0,
        timestamp=at,
        reason="DeAuthorized",
    )
    assert Transaction.objects.get().stop_reason == "DeAuthorized"
    client.force_login(alice)

    page = client.get(f"/stations/{station.pk}/").content.decode()
    live = client.get(f"/stations/{station.pk}/live/").content.decode()

    for body in (page, live):
        assert "Sessions the backend refused" in body
        assert "not one of this CPO&#x27;s tags (Invalid)" in body
        assert "stopped: DeAuthorized" in body


def test_home_lists_stations_whose_local_list_is_out_of_sync(station, cpo_a):
    from stations.models import Station
    from stations.services.home import needs_attention

    def flagged() -> list[str]:
        stations = Station.objects.filter(cpo=cpo_a)
        return [a.problem for a in needs_attention(stations) if a.check == "local_list"]

    never_sent = make_station("CP-LL-NEVER", cpo=cpo_a, ocpp_version=station.ocpp_version)
    IdTag.objects.create(cpo=cpo_a, tag="VAN-12")
    assert flagged() == []  # no list was ever sent: nothing to keep in sync

    answer(station, local_list_params(station=station), {"status": "Accepted"})
    assert flagged() == []

    IdTag.objects.create(cpo=cpo_a, tag="VAN-13")
    assert flagged() == ["Local list out of sync (1 change to send)"]

    answer(station, local_list_params(station=station), {"status": "VersionMismatch"})
    assert flagged() == [f"Local list refused: {REFUSALS['VersionMismatch']}"]

    answer(station, local_list_params(station=station, full=True), {"status": "NotSupported"})
    assert flagged() == []  # a charger without a local list is not nagged about
    assert never_sent.local_list_version is None
