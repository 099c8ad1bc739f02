"""The station page: identity, boot facts, connection, connectors, the current transaction,
the command history and the stored configuration; and its polled live part."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from stations.models import (
    Command,
    Connector,
    MeterValue,
    StationVariable,
    Transaction,
)
from tests.factories import make_station

pytestmark = pytest.mark.django_db


@pytest.fixture
def station(cpo_a):
    station = make_station(
        "CP-PAGE-1",
        cpo=cpo_a,
        vendor="Acme",
        model="Fast 22",
        firmware_version="4.2.0",
        last_boot_at=timezone.now(),
        connected=True,
        channel_name="chan.page",
    )
    Connector.objects.create(station=station, connector_id=1, status="Charging")
    Connector.objects.create(
        station=station, connector_id=2, status="Faulted", error_code="GroundFailure"
    )
    return station


def page(client, user, station) -> str:
    client.force_login(user)
    response = client.get(reverse("stations:detail", args=[station.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_page_shows_identity_boot_facts_connection_and_connectors(client, alice, station):
    html = page(client, alice, station)

    assert '<dd class="mono">CP-PAGE-1</dd>' in html
    assert "<dd>Acme</dd>" in html and "<dd>Fast 22</dd>" in html and "<dd>4.2.0</dd>" in html
    assert "badge-online" in html
    assert '<span class="chip chip-charging">Charging</span>' in html
    assert '<span class="chip chip-faulted">Faulted</span>' in html
    assert "GroundFailure" in html


def test_the_current_transaction_shows_the_energy_so_far(client, alice, station):
    connector = station.connectors.get(connector_id=1)
    now = timezone.now()
    tx = Transaction.objects.create(
        station=station,
        connector=connector,
        id_tag="CARD-7",
        meter_start=1000,
        start_time=now - timedelta(minutes=3),
    )
    register = {"station": station, "transaction": tx, "location": "Outlet"}
    for minutes, kwh in ((2, "1.5"), (1, "3.25")):
        MeterValue.objects.create(
            **register,
            timestamp=now - timedelta(minutes=minutes),
            unit="kWh",
            value=kwh,
            numeric_value=float(kwh),
            normalized_value=float(kwh) * 1000,
            normalized_unit="Wh",
        )
    # Neither a per-phase reading, the EV's own meter nor the station's main meter
    # (connector 0) is the session's energy.
    for other in ({"phase": "L1"}, {"location": "EV"}, {"connector_id": 0}):
        MeterValue.objects.create(
            **(register | other),
            timestamp=now,
            value="9999",
            numeric_value=9999,
            normalized_value=9999,
            normalized_unit="Wh",
        )
    Transaction.objects.create(
        station=station, connector=connector, state=Transaction.State.ENDED, id_tag="OLD-TAG"
    )

    html = page(client, alice, station)

    assert "CARD-7" in html
    assert "2.25 kWh" in html
    assert "OLD-TAG" not in html


def test_without_a_transaction_the_page_says_so(client, alice, station):
    assert "No transaction is running." in page(client, alice, station)


def test_the_command_history_is_newest_first_with_status_asker_and_answer(client, alice, station):
    older = Command.objects.create(
        station=station,
        action="Reset",
        payload={"type": "Soft"},
        status=Command.Status.ACCEPTED,
        response={"status": "Accepted"},
        requested_by=alice,
    )
    newer = Command.objects.create(
        station=station,
        action="UnlockConnector",
        payload={"connectorId": 1},
        status=Command.Status.OFFLINE,
        error="The station is offline.",
    )

    html = page(client, alice, station)

    assert html.index(f'data-command="{newer.pk}"') < html.index(f'data-command="{older.pk}"')
    row = html[html.index(f'data-command="{older.pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'chip-cmd-accepted">Accepted<' in row
    assert '<td data-label="Asked by">alice</td>' in row
    assert "{&quot;status&quot;: &quot;Accepted&quot;}" in row
    assert "The station is offline." in html


def test_the_configuration_is_a_table_of_keys(client, alice, station):
    StationVariable.objects.create(
        station=station, variable="HeartbeatInterval", value="300", mutability="ReadWrite"
    )
    StationVariable.objects.create(
        station=station, variable="NumberOfConnectors", value="2", mutability="ReadOnly"
    )

    html = page(client, alice, station)

    assert 'class="mono">HeartbeatInterval</th>' in html
    assert '<td data-label="Value" class="mono value-cell">300</td>' in html
    assert "Read-only" in html


def test_ocpp2_variables_show_as_component_dot_variable(client, alice, cpo_a):
    v2 = make_station("CP-V2", cpo=cpo_a, ocpp_version="2.0.1")
    StationVariable.objects.create(
        station=v2, component="OCPPCommCtrlr", variable="HeartbeatInterval", value="60"
    )

    html = page(client, alice, v2)

    assert "OCPPCommCtrlr.HeartbeatInterval" in html


def test_the_live_part_says_when_a_command_is_pending(client, alice, station):
    client.force_login(alice)
    url = reverse("stations:live", args=[station.pk])
    assert client.get(url)["X-Commands-Pending"] == "0"

    command = Command.objects.create(station=station, action="Reset", payload={"type": "Soft"})
    pending = client.get(url)
    Command.objects.filter(pk=command.pk).update(
        status=Command.Status.ACCEPTED, response={"status": "Accepted"}
    )
    done = client.get(url)

    assert pending["X-Commands-Pending"] == "1"
    assert "Waiting for the charger" in pending.content.decode()
    assert done["X-Commands-Pending"] == "0"
    assert 'chip-cmd-accepted">Accepted<' in done.content.decode()
    assert "<html" not in done.content.decode()


def test_reading_the_page_writes_nothing(client, alice, station):
    long_ago = timezone.now() - timedelta(hours=1)
    stale = Command.objects.create(station=station, action="Reset", payload={"type": "Soft"})
    Command.objects.filter(pk=stale.pk).update(created_at=long_ago)
    client.force_login(alice)

    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("stations:detail", args=[station.pk]))
        client.get(reverse("stations:live", args=[station.pk]))

    writes = [q["sql"] for q in queries if q["sql"].startswith(("UPDATE", "INSERT", "DELETE"))]
    # The session's last activity is Django's own; nothing of ours is written.
    assert [sql for sql in writes if "django_session" not in sql] == []
    assert Command.objects.get(pk=stale.pk).status == Command.Status.QUEUED


def test_the_page_loads_the_poller_and_marks_the_live_part(client, alice, station):
    html = page(client, alice, station)

    assert f'data-live-url="{reverse("stations:live", args=[station.pk])}"' in html
    assert 'data-pending="0"' in html
    assert "js/station_live.js" in html


def test_the_live_part_runs_a_fixed_number_of_queries(client, alice, station):
    client.force_login(alice)
    url = reverse("stations:live", args=[station.pk])
    client.get(url)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for i in range(5):
        Command.objects.create(
            station=station, action="Reset", payload={}, status="accepted", requested_by=alice
        )
        StationVariable.objects.create(station=station, variable=f"Key{i}", value=str(i))
    assert queries() == few


def test_the_live_part_follows_the_connection_state(client, alice, station):
    client.force_login(alice)
    url = reverse("stations:live", args=[station.pk])
    assert "badge-online" in client.get(url).content.decode()

    type(station).objects.filter(pk=station.pk).update(
        connected=False, disconnected_at=timezone.now()
    )

    assert "Offline since" in client.get(url).content.decode()


def test_a_viewer_sees_the_history_and_configuration_too(client, bob, station):
    Command.objects.create(station=station, action="ClearCache", payload={}, status="rejected")
    StationVariable.objects.create(station=station, variable="HeartbeatInterval", value="300")

    html = page(client, bob, station)

    assert 'chip-cmd-rejected">Rejected<' in html
    assert "HeartbeatInterval" in html


def test_a_pending_ocpp2_station_may_also_be_asked_for_its_base_report(client, alice, cpo_a):
    v2 = make_station(
        "CP-V2-PEND",
        cpo=cpo_a,
        ocpp_version="2.0.1",
        registration_status="Pending",
        connected=True,
        channel_name="c",
    )
    client.force_login(alice)

    response = client.get(reverse("stations:detail", args=[v2.pk]))

    assert [form.kind for form in response.context["command_forms"]] == [
        "trigger_message",
        "get_configuration",
        "change_configuration",
        "get_base_report",
    ]


def test_a_station_of_another_protocol_has_no_ocpp_commands(client, alice, cpo_a):
    ensto = make_station("ENSTO-1", cpo=cpo_a, protocol="ensto", ocpp_version="")

    html = page(client, alice, ensto)

    assert 'id="commands"' not in html
    assert 'id="command-history"' in html


# ---- signed meter values, one click from the session -------------------------------


def signed_session(station) -> Transaction:
    tx = Transaction.objects.create(
        station=station,
        connector=station.connectors.get(connector_id=1),
        start_time=timezone.now(),
        suspicious_timestamp=True,
    )
    MeterValue.objects.create(
        station=station,
        transaction=tx,
        timestamp=timezone.now(),
        value="",
        signed_data="OCMF|<evidence>|" + "z" * 3000,
        encoding_method="OCMF",
        public_key="PUBKEY-123",
    )
    return tx


def test_the_current_transaction_links_its_signed_values_and_shows_its_flags(
    client, alice, station
):
    tx = signed_session(station)
    html = page(client, alice, station)
    assert reverse("stations:transaction_signed", args=[station.pk, tx.pk]) in html
    assert "suspicious time" in html


def test_the_signed_values_page_shows_them_verbatim(client, bob, station):
    tx = signed_session(station)
    client.force_login(bob)  # a viewer may read
    response = client.get(reverse("stations:transaction_signed", args=[station.pk, tx.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "OCMF|&lt;evidence&gt;|" + "z" * 3000 in html
    assert "PUBKEY-123" in html


def test_a_session_of_another_station_is_not_found_under_this_one(client, alice, station, cpo_a):
    other = make_station("CP-PAGE-2", cpo=cpo_a)
    Connector.objects.create(station=other, connector_id=1)
    tx = signed_session(other)
    client.force_login(alice)
    response = client.get(reverse("stations:transaction_signed", args=[station.pk, tx.pk]))
    assert response.status_code == 404


def test_the_signed_values_page_needs_a_login(client, station):
    tx = signed_session(station)
    response = client.get(reverse("stations:transaction_signed", args=[station.pk, tx.pk]))
    assert response.status_code == 302
