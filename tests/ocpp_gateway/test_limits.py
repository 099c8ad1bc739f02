"""Limits across connections: handshake spam filling the pool, password brute force."""

from __future__ import annotations

import asyncio
import base64
import secrets

import pytest
from channels.db import database_sync_to_async
from django.db.models import Sum

from ocpp_gateway.limits import FrameRateLimit, TokenBucket
from ocpp_gateway.refusals import RefusalLog, refusal_log, refuse
from ocpp_spec.passwords import hash_password
from stations.models import ConnectionAttempt, Station
from stations.services.refusals import (
    connection_refusal_record,
    connection_refusals_record_many,
)
from tests.factories import make_station
from tests.ocpp_gateway.conftest import open_charger

PASSWORD = "correct-horse-battery-1"
ATTACKER = "203.0.113.7"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# ---- token bucket ------------------------------------------------------------------------


def test_a_bucket_allows_the_burst_then_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now = 0.5  # one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    clock.now = 100  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3


def test_refusals_spread_over_time_are_not_a_flood():
    clock = Clock()
    limit = FrameRateLimit(rate=0.0001, burst=1, strikes=3, clock=clock)
    limit.allow()
    for _ in range(5):
        clock.now += 31  # one refusal every 31 s: 3 never fall within a minute
        limit.allow()
    assert not limit.flooding


def test_refusals_in_quick_succession_are_a_flood():
    clock = Clock()
    limit = FrameRateLimit(rate=0.0001, burst=1, strikes=3, clock=clock)
    results = [limit.allow() for _ in range(4)]
    assert results == [True, False, False, False]
    assert limit.flooding


# ---- handshake spam ----------------------------------------------------------------------


def charger_from(address: str, cbid: str, headers=None):
    charger = open_charger(cbid, headers=headers)
    charger.ws.scope["client"] = (address, 40000)
    return charger


async def connect_and_leave(address: str, cbid: str, headers=None) -> bool:
    charger = charger_from(address, cbid, headers)
    accepted = await charger.connect()
    if accepted:
        await charger.close()
    return accepted


def refusals(reason: str, address: str = ATTACKER) -> tuple[int, int]:
    """(rows, attempts counted) for refusals of `reason` from `address`."""
    rows = ConnectionAttempt.objects.filter(remote_addr=address, reason=reason)
    return rows.count(), rows.aggregate(total=Sum("count"))["total"] or 0


@pytest.mark.django_db(transaction=True)
async def test_random_cbids_from_one_address_fill_neither_pool_nor_database(settings):
    settings.OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR = 20
    settings.OCPP_POOL_MAX_SIZE = 0
    results = [
        await connect_and_leave(ATTACKER, f"SPAM-{secrets.token_hex(6)}") for _ in range(300)
    ]
    assert results.count(True) == 20
    assert await Station.objects.acount() == 20
    await refusal_log.flush()  # Refusals of the last second are added up in memory.
    rows, counted = await database_sync_to_async(refusals)("rate_limited")
    assert counted == 280
    assert rows <= 2  # one row per minute, however many attempts


@pytest.mark.django_db(transaction=True)
async def test_another_address_and_known_stations_still_connect(settings):
    settings.OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR = 3
    await database_sync_to_async(make_station)("KNOWN-1")
    for i in range(5):
        await connect_and_leave(ATTACKER, f"SPAM-{i}")
    assert await connect_and_leave(ATTACKER, "KNOWN-1")
    assert await connect_and_leave("198.51.100.1", "NEW-ELSEWHERE")


@pytest.mark.django_db(transaction=True)
async def test_a_full_pool_refuses_new_cbids_and_counts_them(settings):
    settings.OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR = 0
    settings.OCPP_POOL_MAX_SIZE = 5
    results = [await connect_and_leave(f"192.0.2.{i}", f"POOL-{i}") for i in range(8)]
    assert results == [True] * 5 + [False] * 3
    assert await Station.objects.in_pool().acount() == 5
    refused = await ConnectionAttempt.objects.filter(reason="pool_full").acount()
    assert refused == 3


@pytest.mark.django_db(transaction=True)
async def test_refusals_from_one_address_are_aggregated_per_minute(settings):
    settings.OCPP_ALLOW_UNKNOWN_STATIONS = False
    for i in range(50):
        await connect_and_leave(ATTACKER, f"UNKNOWN-{i}")
    await refusal_log.flush()
    rows, counted = await database_sync_to_async(refusals)("unknown_cbid")
    assert (rows, counted) == (1, 50)


@pytest.mark.django_db(transaction=True)
async def test_a_storm_of_refusals_costs_one_write_per_second(monkeypatch):
    writes = []

    def counting(**kwargs):
        writes.append(kwargs)
        connection_refusal_record(**kwargs)

    def counting_many(**kwargs):
        writes.append(kwargs)
        connection_refusals_record_many(**kwargs)

    monkeypatch.setattr("ocpp_gateway.refusals.connection_refusal_record", counting)
    monkeypatch.setattr("ocpp_gateway.refusals.connection_refusals_record_many", counting_many)
    log = RefusalLog()  # nothing written in the last second
    monkeypatch.setattr("ocpp_gateway.refusals.refusal_log", log)
    scope = {"client": (ATTACKER, 40000), "path": "/ocpp/x"}
    for i in range(100):
        await refuse(scope, reason="unknown_cbid", cbid=f"UNKNOWN-{i}")
    assert len(writes) == 1  # the first at once; the others wait for the second to end
    await log.flush()
    assert len(writes) == 2
    rows, counted = await database_sync_to_async(refusals)("unknown_cbid")
    assert (rows, counted) == (1, 100)


@pytest.mark.django_db(transaction=True)
async def test_password_failures_are_written_at_once(monkeypatch):
    scope = {"client": (ATTACKER, 40000), "path": "/ocpp/CP-1"}
    for _ in range(3):
        await refuse(scope, reason="bad_password", cbid="CP-1", detail="wrong password")
    rows, counted = await database_sync_to_async(refusals)("bad_password")
    assert counted == 3


# ---- brute force -------------------------------------------------------------------------


def basic_auth(username: str, password: str) -> list[tuple[bytes, bytes]]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return [(b"authorization", f"Basic {token}".encode())]


async def protected(cbid: str = "CP-LOCK") -> Station:
    return await database_sync_to_async(make_station)(
        cbid, auth_password_hash=hash_password(PASSWORD), security_profile=1
    )


@pytest.mark.django_db(transaction=True)
async def test_after_too_many_wrong_passwords_even_the_right_one_is_refused(settings):
    settings.OCPP_AUTH_MAX_FAILURES_PER_CBID = 5
    await protected()
    for i in range(5):
        assert not await connect_and_leave(
            ATTACKER, "CP-LOCK", basic_auth("CP-LOCK", f"guess-{i:012d}")
        )
    assert not await connect_and_leave(ATTACKER, "CP-LOCK", basic_auth("CP-LOCK", PASSWORD))
    limited = await ConnectionAttempt.objects.filter(reason="rate_limited").alast()
    assert limited.detail.startswith("too many failed passwords for this CBID from this address")
    # Counted per (CBID, address): the guesser is locked out, not the station.
    assert await connect_and_leave("198.51.100.9", "CP-LOCK", basic_auth("CP-LOCK", PASSWORD))


@pytest.mark.django_db(transaction=True)
async def test_handshakes_without_credentials_are_no_guesses(settings):
    settings.OCPP_AUTH_MAX_FAILURES_PER_CBID = 3
    settings.OCPP_AUTH_MAX_FAILURES_PER_ADDRESS = 3
    await protected()
    for _ in range(10):
        assert not await connect_and_leave(ATTACKER, "CP-LOCK")
    assert await ConnectionAttempt.objects.filter(reason="no_credentials").aexists()
    assert not await ConnectionAttempt.objects.filter(reason="bad_password").aexists()
    assert await connect_and_leave(ATTACKER, "CP-LOCK", basic_auth("CP-LOCK", PASSWORD))


@pytest.mark.django_db(transaction=True)
async def test_the_address_a_station_last_connected_from_is_never_locked_out(settings):
    settings.OCPP_AUTH_MAX_FAILURES_PER_CBID = 3
    settings.OCPP_AUTH_MAX_FAILURES_PER_ADDRESS = 3
    charger_address = "203.0.113.50"
    await protected()
    assert await connect_and_leave(charger_address, "CP-LOCK", basic_auth("CP-LOCK", PASSWORD))
    station = await Station.objects.aget(cbid="CP-LOCK")
    assert station.connected_from_addr == charger_address
    # Someone behind the charger's own address (a shared NAT) guesses away.
    for i in range(6):
        assert not await connect_and_leave(
            charger_address, "CP-LOCK", basic_auth("CP-LOCK", f"guess-{i:012d}")
        )
    assert await connect_and_leave(charger_address, "CP-LOCK", basic_auth("CP-LOCK", PASSWORD))


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_does_not_check_the_password(settings, monkeypatch):
    settings.OCPP_AUTH_MAX_FAILURES_PER_CBID = 2
    await protected()
    for _ in range(2):
        await connect_and_leave(ATTACKER, "CP-LOCK", basic_auth("CP-LOCK", "x" * 16))
    checked = []
    monkeypatch.setattr(
        "stations.services.passwords.verify_password",
        lambda *args, **kwargs: checked.append(args) or True,
    )
    assert not await connect_and_leave(ATTACKER, "CP-LOCK", basic_auth("CP-LOCK", PASSWORD))
    assert checked == []


@pytest.mark.django_db(transaction=True)
async def test_the_lockout_ends_when_the_failures_age_out(settings):
    settings.OCPP_AUTH_MAX_FAILURES_PER_CBID = 2
    settings.OCPP_AUTH_FAILURE_WINDOW = 1
    await protected()
    for _ in range(2):
        await connect_and_leave(ATTACKER, "CP-LOCK", basic_auth("CP-LOCK", "x" * 16))
    assert not await connect_and_leave(ATTACKER, "CP-LOCK", basic_auth("CP-LOCK", PASSWORD))
    await asyncio.sleep(1.1)
    assert await connect_and_leave(ATTACKER, "CP-LOCK", basic_auth("CP-LOCK", PASSWORD))


@pytest.mark.django_db(transaction=True)
async def test_one_address_guessing_many_stations_is_locked_out(settings):
    settings.OCPP_AUTH_MAX_FAILURES_PER_CBID = 100
    settings.OCPP_AUTH_MAX_FAILURES_PER_ADDRESS = 4
    for i in range(5):
        await protected(f"CP-{i}")
    for i in range(4):
        await connect_and_leave(ATTACKER, f"CP-{i}", basic_auth(f"CP-{i}", "y" * 16))
    assert not await connect_and_leave(ATTACKER, "CP-4", basic_auth("CP-4", PASSWORD))
    assert await connect_and_leave("198.51.100.9", "CP-4", basic_auth("CP-4", PASSWORD))


@pytest.mark.django_db
def test_superusers_see_how_many_attempts_each_refusal_row_counts(client, root):
    ConnectionAttempt.objects.create(
        cbid="SPAM-1", remote_addr=ATTACKER, reason="rate_limited", count=4321
    )
    client.force_login(root)
    response = client.get("/admin/stations/connectionattempt/")
    assert response.status_code == 200
    assert "4321" in response.content.decode()
