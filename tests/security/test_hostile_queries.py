"""Issue 11 point 6: no GET answers 500, whatever the query string or the id in the path.

Walks every URL pattern of the project (Django admin and static files aside, as the other
walks do) as every role, with query strings that broke pages before (a NUL, a page number
past any integer) and their relatives, and ids past the database's integers.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from cpo.models import Membership
from stations.models import Command, Transaction
from tests.factories import make_member, make_user
from tests.security.conftest import NO_INVITATION
from tests.security.walk import project_routes

pytestmark = pytest.mark.django_db

# Every name a view of ours reads from the query string, and then some.
NAMES = (
    "q", "page", "since", "quiet", "pool", "recent", "action", "user", "person", "target",
    "from", "to", "date", "format", "cpo", "status", "kind", "next", "export", "station",
)  # fmt: skip
# Already percent-encoded: some are no text at all (a lone surrogate, bytes not UTF-8).
VALUES = (
    "%00",
    "a%00b",
    "99999999999999999999",
    "-99999999999999999999",
    "1e309",
    "NaN",
    "-1",
    "0",
    "9999-99-99",
    "%ED%A0%80",
    "%FF%FE",
    "x" * 5000,
    "%25",
    "%",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%E2%80%AEgnp.exe",
)
HUGE_ID = 10**20
OK = {200, 204, 301, 302, 400, 401, 403, 404, 405, 429}


def query_strings() -> list[str]:
    # Every name at once: each view reads the ones it knows.
    cases = ["&".join(f"{name}={value}" for name in NAMES) for value in VALUES]
    cases += ["%00=1", "page", "&&&", "page=1&page=2"]
    return cases


@pytest.fixture
def values(station_a, alice, tag_a, alert_a, webhook_a) -> dict:
    command = Command.objects.create(
        station=station_a, action="Reset", payload={"type": "Soft"}, requested_by=alice
    )
    tx = Transaction.objects.create(station=station_a, id_tag="T", start_time=station_a.created_at)
    return {
        "pk": station_a.pk,
        "command_pk": command.pk,
        "transaction_pk": tx.pk,
        "public_id": station_a.public_id,
        "cpo_pk": station_a.cpo_id,
        "membership_pk": Membership.objects.filter(cpo=station_a.cpo).first().pk,
        "tag_pk": tag_a.pk,
        "alert_pk": alert_a.pk,
        "webhook_pk": webhook_a.pk,
        **NO_INVITATION,
    }


def huge(values: dict) -> dict:
    return {
        key: HUGE_ID
        if isinstance(value, int)
        else uuid.UUID(int=2**128 - 1)
        if isinstance(value, uuid.UUID)
        else value
        for key, value in values.items()
    }


@pytest.mark.parametrize("who", ["anonymous", "alice", "bob", "carol", "root", "tina"])
def test_no_get_answers_500_whatever_the_query(who, request, values, cpo_a):
    client = Client(raise_request_exception=True)
    if who == "tina":
        user = make_user("tina")
        make_member(user, cpo_a, Membership.Role.TECHNICIAN)
        client.force_login(user)
    elif who == "root":
        client.force_login(make_user("root", superuser=True))
    elif who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    failures = []
    for route in project_routes():
        urls = [(route.url(values), ["", *query_strings()]), (route.url(huge(values)), [""])]
        for url, queries in urls:
            for query in queries:
                status = client.get(f"{url}?{query}").status_code
                if status not in OK:
                    failures.append((status, url, query[:60]))
    assert not failures, failures[:20]


def test_the_public_api_answers_a_page_past_any_integer_with_404(client):
    response = client.get("/api/stations/?page=99999999999999999999")
    assert response.status_code == 404
    assert response.json() == {"error": "no such page"}


def test_a_nul_in_the_search_is_a_400(client, alice):
    client.force_login(alice)
    assert client.get("/stations/?q=%00").status_code == 400
