"""Shared data for the security tests: CPO A's station with the things a page can show."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from alerts.models import Alert, Webhook
from cpo.models import Membership
from cpo.team import invitation_tokens
from stations.models import Command, Connector, IdTag, MeterValue, Station, Transaction
from tests.factories import make_member, make_station, make_user

# Strings only CPO A's data contains: no page or answer for CPO B may show them.
A_CBID = "ACME-A-7731"
A_NAME = "Alpha Depot"
A_TAG = "ALPHA-CARD-9913"


@pytest.fixture(autouse=True)
def _own_cache(settings, request):
    """A fresh per-test memory cache: login counters must not leak between tests (nor
    into a shared Redis when REDIS_URL is set)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"security-{request.node.nodeid}",
        }
    }
    # These tests log in over and over: a fast hasher (set before the cast is created).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def station_a(cpo_a) -> Station:
    """CPO A's station, connected, with a connector and a command (not visible to customers)."""
    station = make_station(
        A_CBID,
        cpo=cpo_a,
        name=A_NAME,
        vendor="Acme",
        model="Fast 22",
        connected=True,
        channel_name="specific.test!a",
    )
    Connector.objects.create(station=station, connector_id=1, status="Available")
    return station


@pytest.fixture
def tag_a(cpo_a) -> IdTag:
    """CPO A's ID tag, with a label only CPO A's pages may show."""
    return IdTag.objects.create(cpo=cpo_a, tag=A_TAG, label=f"{A_NAME} van")


@pytest.fixture
def command_a(station_a, alice) -> Command:
    return Command.objects.create(
        station=station_a,
        action="Reset",
        payload={"type": "Soft"},
        status=Command.Status.ACCEPTED,
        requested_by=alice,
    )


@pytest.fixture
def transaction_a(station_a) -> Transaction:
    """A session of CPO A's station, with a signed meter value naming the station."""
    at = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)
    tx = Transaction.objects.create(
        station=station_a, connector=station_a.connectors.get(), id_tag="A-CARD", start_time=at
    )
    MeterValue.objects.create(
        station=station_a, transaction=tx, timestamp=at, value="", signed_data=f"OCMF|{A_CBID}|"
    )
    return tx


@pytest.fixture
def invitee(cpo_a):
    """Someone invited to CPO A who has not set a password yet (their link still works)."""
    user = make_user("dave@example.com")
    user.email = "dave@example.com"
    user.set_unusable_password()
    user.save()
    make_member(user, cpo_a, Membership.Role.VIEWER)
    return user


def invitation_values(user) -> dict:
    """The invitation link's URL parameters for `user` (valid until they set a password)."""
    return {
        "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
        "token": invitation_tokens.make_token(user),
    }


# The invitation link's parameters when they name nobody.
NO_INVITATION = {"uidb64": "Zm9v", "token": "bad-token"}


@pytest.fixture
def alert_a(station_a) -> Alert:
    """An open alert of CPO A's station."""
    return Alert.objects.create(
        cpo=station_a.cpo,
        station=station_a,
        kind="offline",
        state=Alert.State.OPEN,
        detail=f"{A_NAME} not connected",
        opened_at=datetime(2026, 1, 2, 11, 0, tzinfo=UTC),
    )


@pytest.fixture
def webhook_a(station_a) -> Webhook:
    return Webhook.objects.create(cpo=station_a.cpo, url="https://hooks.example/cpo-a")
