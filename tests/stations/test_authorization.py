"""The one authorization service: every verdict, on 1.6 (no token type) and 2.x (typed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from stations.models import IdTag, Transaction
from stations.services.id_tags import (
    LAST_USED_RESOLUTION,
    SessionExclusion,
    id_tag_authorize,
    id_token_authorize,
    remote_start_refusal,
)
from stations.services.transaction_events import TransactionEventData, transaction_event_record
from stations.services.transactions import transaction_start, transaction_stop
from tests.factories import make_station

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def station(cpo_a):
    return make_station("CP-AUTH", cpo=cpo_a, ocpp_version="1.6")


@pytest.fixture
def station_v2(cpo_a):
    return make_station("CP-AUTH-2", cpo=cpo_a, ocpp_version="2.0.1")


def tag(cpo, value="CARD-1", **fields) -> IdTag:
    return IdTag.objects.create(cpo=cpo, tag=value, **fields)


def verdict_v16(station, value="CARD-1", **kwargs) -> str:
    return id_tag_authorize(station_id=station.pk, id_tag=value, **kwargs).status


def verdict_v2(station, value="CARD-1", token_type="ISO14443", **kwargs) -> str:
    return id_token_authorize(
        station_id=station.pk, id_token=value, token_type=token_type, **kwargs
    ).status


VERDICTS = [verdict_v16, verdict_v2]


@pytest.mark.parametrize("verdict", VERDICTS)
def test_accepted_tag(station, station_v2, cpo_a, verdict):
    tag(cpo_a)
    assert verdict(station if verdict is verdict_v16 else station_v2) == "Accepted"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_blocked_tag(station, cpo_a, verdict):
    tag(cpo_a, status="Blocked")
    assert verdict(station) == "Blocked"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_expired_tag(station, cpo_a, verdict):
    tag(cpo_a, expiry_date=timezone.now() - timedelta(minutes=1))
    assert verdict(station) == "Expired"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_unknown_tag_is_invalid(station, cpo_a, verdict):
    assert verdict(station) == "Invalid"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_tag_of_cpo_a_is_invalid_at_cpo_b(cpo_a, cpo_b, verdict):
    tag(cpo_a)
    station_b = make_station("CP-B", cpo=cpo_b)
    assert verdict(station_b) == "Invalid"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_tag_in_a_running_session_is_concurrent(station, cpo_a, verdict):
    tag(cpo_a)
    other = make_station("CP-OTHER", cpo=cpo_a)
    Transaction.objects.create(station=other, id_tag="card-1", start_time=T0)
    assert verdict(station) == "ConcurrentTx"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_cpo_allowing_several_sessions_accepts_a_busy_tag(station, cpo_a, verdict):
    cpo_a.one_session_per_tag = False
    cpo_a.save()
    tag(cpo_a)
    Transaction.objects.create(station=station, id_tag="CARD-1", start_time=T0)
    assert verdict(station) == "Accepted"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_a_finished_session_does_not_count(station, cpo_a, verdict):
    tag(cpo_a)
    Transaction.objects.create(
        station=station, id_tag="CARD-1", start_time=T0, state=Transaction.State.ENDED
    )
    assert verdict(station) == "Accepted"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_blocked_group_blocks_its_members(station, cpo_a, verdict):
    tag(cpo_a, "FLEET", status="Blocked")
    tag(cpo_a, parent_id_tag="FLEET")
    assert verdict(station) == "Blocked"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_expired_group_expires_its_members(station, cpo_a, verdict):
    tag(cpo_a, "FLEET", expiry_date=timezone.now() - timedelta(days=1))
    tag(cpo_a, parent_id_tag="FLEET")
    assert verdict(station) == "Expired"


def test_group_id_is_given_with_the_verdict(station, station_v2, cpo_a):
    tag(cpo_a, "FLEET")
    tag(cpo_a, parent_id_tag="FLEET")
    assert id_tag_authorize(station_id=station.pk, id_tag="CARD-1").parent_id_tag == "FLEET"
    info = id_token_authorize(station_id=station_v2.pk, id_token="CARD-1", token_type="ISO14443")
    assert info.parent_id_tag == "FLEET"


@pytest.mark.parametrize("verdict", VERDICTS)
def test_free_usage_accepts_any_token(station, cpo_a, verdict):
    station.free_usage = True
    station.save()
    tag(cpo_a, status="Blocked")
    Transaction.objects.create(station=station, id_tag="OTHER", start_time=T0)
    assert verdict(station) == "Accepted"
    assert verdict(station, "NOBODY") == "Accepted"
    assert verdict(station, "OTHER") == "Accepted"


def test_v2_token_of_another_type_is_invalid(station_v2, cpo_a):
    tag(cpo_a, token_type="ISO14443")
    assert verdict_v2(station_v2, token_type="eMAID") == "Invalid"
    assert verdict_v2(station_v2, token_type="Central") == "Accepted"


def test_tags_are_unique_per_cpo_whatever_the_case(cpo_a, cpo_b):
    tag(cpo_a, "abc")
    tag(cpo_b, "ABC")
    with pytest.raises(IntegrityError):
        tag(cpo_a, "ABC")


def test_last_used_is_written_at_most_once_a_minute(station, cpo_a, django_assert_num_queries):
    card = tag(cpo_a)
    id_tag_authorize(station_id=station.pk, id_tag="CARD-1")
    card.refresh_from_db()
    first = card.last_used_at
    assert first is not None
    # Within the minute: a station read, the tag, the concurrency probe; no UPDATE.
    with django_assert_num_queries(3):
        id_tag_authorize(station_id=station.pk, id_tag="CARD-1")
    card.refresh_from_db()
    assert card.last_used_at == first
    IdTag.objects.filter(pk=card.pk).update(last_used_at=first - LAST_USED_RESOLUTION)
    id_tag_authorize(station_id=station.pk, id_tag="CARD-1")
    card.refresh_from_db()
    assert card.last_used_at > first


# ---- the paths that ask ---------------------------------------------------------------


def test_1_6_start_with_a_busy_tag_is_concurrent_and_its_resend_too(station, cpo_a):
    tag(cpo_a)
    other = make_station("CP-OTHER", cpo=cpo_a)
    Transaction.objects.create(station=other, id_tag="CARD-1", start_time=T0)
    tx, info = transaction_start(
        station_id=station.pk, connector_id=1, id_tag="CARD-1", meter_start=0, timestamp=T0
    )
    assert info.status == "ConcurrentTx"
    assert tx.id_tag_status == "ConcurrentTx"


def test_1_6_start_resent_is_not_concurrent_with_itself(station, cpo_a):
    tag(cpo_a)
    start = {"connector_id": 1, "id_tag": "CARD-1", "meter_start": 0, "timestamp": T0}
    first, info = transaction_start(station_id=station.pk, **start)
    again, info_again = transaction_start(station_id=station.pk, **start)
    assert first.pk == again.pk
    assert (info.status, info_again.status) == ("Accepted", "Accepted")


def test_1_6_new_start_on_the_same_connector_supersedes_not_concurrent(station, cpo_a):
    tag(cpo_a)
    transaction_start(
        station_id=station.pk, connector_id=1, id_tag="CARD-1", meter_start=0, timestamp=T0
    )
    _tx, info = transaction_start(
        station_id=station.pk,
        connector_id=1,
        id_tag="CARD-1",
        meter_start=10,
        timestamp=T0 + timedelta(hours=1),
    )
    assert info.status == "Accepted"


def test_1_6_stop_with_the_session_tag_is_accepted(station, cpo_a):
    tag(cpo_a)
    tx, _info = transaction_start(
        station_id=station.pk, connector_id=1, id_tag="CARD-1", meter_start=0, timestamp=T0
    )
    info = transaction_stop(
        station_id=station.pk,
        transaction_id=tx.pk,
        meter_stop=100,
        timestamp=T0 + timedelta(hours=1),
        id_tag="CARD-1",
    )
    assert info.status == "Accepted"


def event(event_type: str, seq_no: int, transaction_id: str = "TX-1", **fields):
    return TransactionEventData(
        event_type=event_type,
        timestamp=T0 + timedelta(minutes=seq_no),
        seq_no=seq_no,
        transaction_id=transaction_id,
        trigger_reason="Authorized",
        evse_id=1,
        connector_id=1,
        id_token="CARD-1",
        id_token_type="ISO14443",
        **fields,
    )


def test_2x_session_events_are_not_concurrent_with_their_own_session(station_v2, cpo_a):
    tag(cpo_a)
    started = transaction_event_record(station_id=station_v2.pk, event=event("Started", 0))
    updated = transaction_event_record(station_id=station_v2.pk, event=event("Updated", 1))
    assert started.id_token_info.status == "Accepted"
    assert updated.id_token_info.status == "Accepted"
    other = transaction_event_record(station_id=station_v2.pk, event=event("Started", 0, "TX-2"))
    assert other.id_token_info.status == "ConcurrentTx"
    ended = transaction_event_record(station_id=station_v2.pk, event=event("Ended", 2))
    assert ended.id_token_info.status == "Accepted"


def test_remote_start_refusal_names_the_reason(station, station_v2, cpo_a):
    tag(cpo_a, "GOOD")
    tag(cpo_a, "BAD", status="Blocked")
    assert remote_start_refusal(station=station, id_tag="GOOD") == ""
    assert remote_start_refusal(station=station_v2, id_tag="GOOD") == ""
    assert "blocked" in remote_start_refusal(station=station, id_tag="BAD")
    assert "not one of this CPO's tags" in remote_start_refusal(station=station, id_tag="NONE")


def test_session_exclusion_of_connector_zero(station, cpo_a):
    tag(cpo_a)
    Transaction.objects.create(station=station, id_tag="CARD-1", start_time=T0)
    info = id_tag_authorize(
        station_id=station.pk, id_tag="CARD-1", session=SessionExclusion(connector_id=0)
    )
    assert info.status == "Accepted"
