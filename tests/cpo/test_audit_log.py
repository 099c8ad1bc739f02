"""A CPO admin reads their CPO's audit log in the panel: filters, CSV export, addresses."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cpo.audit import audit_record
from cpo.models import AuditEvent
from tests.factories import make_station

pytestmark = pytest.mark.django_db

Action = AuditEvent.Action


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def at(day: str) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(day + " 12:00"))


@pytest.fixture
def lines(alice, bob, cpo_a, cpo_b):
    """Audit lines of CPO A (and one of CPO B that must never show)."""
    made = [
        audit_record(action=Action.STATION_CLAIMED, user=alice, cpo=cpo_a, target="CP-ONE"),
        audit_record(action=Action.COMMAND_REQUESTED, user=bob, cpo=cpo_a, target="CP-TWO"),
        audit_record(action=Action.MEMBER_REMOVED, user=alice, cpo=cpo_a, target="=HYPERLINK(1)"),
        audit_record(action=Action.STATION_CLAIMED, cpo=cpo_b, target="CP-OF-B"),
    ]
    for line, day in zip(
        made, ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-03"], strict=False
    ):
        AuditEvent.objects.filter(pk=line.pk).update(time=at(day))
    return made


def log_url(cpo, **query) -> str:
    url = reverse("cpo:audit_log", args=[cpo.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def shown_targets(response) -> list[str]:
    return [event.target for event in response.context["events"]]


def test_an_admin_reads_her_cpos_log_newest_first(client, alice, cpo_a, lines):
    client.force_login(alice)

    response = client.get(log_url(cpo_a))

    assert response.status_code == 200
    assert shown_targets(response) == ["=HYPERLINK(1)", "CP-TWO", "CP-ONE"]
    html = response.content.decode()
    assert "CP-OF-B" not in html
    assert "Station claimed" in html and "Command requested" in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "station_claimed"}, ["CP-ONE"]),
        ({"user": "BO"}, ["CP-TWO"]),
        ({"target": "cp-"}, ["CP-TWO", "CP-ONE"]),
        ({"since": "2026-03-02"}, ["=HYPERLINK(1)", "CP-TWO"]),
        ({"until": "2026-03-01"}, ["CP-ONE"]),
        ({"since": "2026-03-02", "until": "2026-03-02"}, ["CP-TWO"]),
    ],
)
def test_the_log_filters(client, alice, cpo_a, lines, query, expected):
    client.force_login(alice)

    assert shown_targets(client.get(log_url(cpo_a, **query))) == expected


@pytest.mark.parametrize(
    "query",
    [
        {"since": "yesterday"},
        {"action": "nonsense"},
        {"since": "2026-03-05", "until": "2026-03-01"},
    ],
)
def test_a_bad_filter_is_reported_not_a_500(client, alice, cpo_a, lines, query):
    client.force_login(alice)

    response = client.get(log_url(cpo_a, **query))

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_the_export_is_the_filtered_log_as_csv(client, alice, cpo_a, lines):
    client.force_login(alice)

    response = client.get(log_url(cpo_a, target="cp-", format="csv"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "time_utc",
        "user",
        "action",
        "action_label",
        "target",
        "address",
        "details",
    ]
    assert [(r[1], r[2], r[4]) for r in rows[1:]] == [
        ("bob", "command_requested", "CP-TWO"),
        ("alice", "station_claimed", "CP-ONE"),
    ]
    assert rows[2][0] == "2026-03-01T12:00:00Z"


def test_the_export_never_hands_a_spreadsheet_a_formula(client, alice, cpo_a, lines):
    client.force_login(alice)

    rows = list(csv.reader(io.StringIO(client.get(log_url(cpo_a, format="csv")).content.decode())))

    assert rows[1][4] == "'=HYPERLINK(1)"


def test_the_export_holds_only_this_cpo(client, carol, cpo_b, lines):
    client.force_login(carol)

    body = client.get(log_url(cpo_b, format="csv")).content.decode()

    assert "CP-OF-B" in body and "CP-ONE" not in body


def test_the_log_says_where_a_panel_change_came_from(client, alice, cpo_a):
    make_station("CP-WHERE")  # in the pool
    client.force_login(alice)

    client.post(
        reverse("stations:add"),
        {"protocol": "ocpp", "cbid": "CP-WHERE", "cpo": cpo_a.pk},
        REMOTE_ADDR="198.51.100.7",
    )

    claimed = AuditEvent.objects.get(action=Action.STATION_CLAIMED, target="CP-WHERE")
    assert claimed.remote_addr == "198.51.100.7"
    html = client.get(log_url(cpo_a)).content.decode()
    assert "198.51.100.7" in html


def test_a_line_written_outside_a_request_has_no_address(alice, cpo_a):
    line = audit_record(action=Action.STATION_CLAIMED, user=alice, cpo=cpo_a, target="CLI")

    assert line.remote_addr is None


def test_the_page_is_paginated(client, alice, cpo_a):
    for n in range(55):
        audit_record(action=Action.COMMAND_REQUESTED, user=alice, cpo=cpo_a, target=f"CP-{n}")
    client.force_login(alice)

    first = client.get(log_url(cpo_a))
    second = client.get(log_url(cpo_a, page=2))

    assert len(first.context["events"]) == 50
    assert len(second.context["events"]) == 5
    assert "page=2" in first.content.decode()


def test_old_lines_are_reached_by_dates(client, alice, cpo_a):
    old = audit_record(action=Action.COMMAND_REQUESTED, user=alice, cpo=cpo_a, target="OLD")
    AuditEvent.objects.filter(pk=old.pk).update(time=timezone.now() - timedelta(days=400))
    client.force_login(alice)
    since = (timezone.now() - timedelta(days=401)).date().isoformat()
    until = (timezone.now() - timedelta(days=399)).date().isoformat()

    assert shown_targets(client.get(log_url(cpo_a, since=since, until=until))) == ["OLD"]
