"""Authorization: whether a token may charge at a station, the one rule for every path.

1.6 Authorize, StartTransaction and StopTransaction, 2.x Authorize and
TransactionEvent(idToken), and a remote start from the panel all ask here. The verdict
comes from the station's CPO's tags only (a tag of CPO A is Invalid at CPO B's stations):

- no such tag (or a station in the pool): Invalid;
- the tag Blocked: Blocked; Accepted but past its expiry: Expired;
- its group (parent) id names another tag of the CPO that is Blocked or Expired: that
  status (blocking a group's tag blocks its members);
- 2.x: a tag registered with a token type matches only that type (or Central, the type
  the backend itself gives remote starts);
- Accepted, unless the CPO allows one session at a time per tag and the tag is in a
  running session elsewhere: ConcurrentTx;
- free usage on the station accepts every token, whatever its record says.

`last_used_at` is written at most once a minute per tag (a conditional UPDATE that
matches nothing when the stored time is recent), so a storm of frames presenting the
same card does not become a write each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from stations.models import AuthorizationStatus, IdTag, Station, Transaction

# How stale `last_used_at` may get before a presentation writes it again.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# 2.x token types.
CENTRAL = "Central"
NO_AUTHORIZATION = "NoAuthorization"
# 2.0.1 idToken is at most 36 characters; 2.1 allows 255, which no IdTag can hold.
ID_TOKEN_MAX = 36

Verdict = AuthorizationStatus

# Why the backend refuses a token, for people (the panel's remote start, the station page).
REFUSAL_REASONS = {
    Verdict.BLOCKED: "the ID tag is blocked",
    Verdict.EXPIRED: "the ID tag has expired",
    Verdict.INVALID: "the ID tag is not one of this CPO's tags",
    Verdict.CONCURRENT_TX: "the ID tag is already in a running session (one at a time)",
}


@dataclass
class IdTagInfo:
    """The backend's verdict on an id tag (1.6 idTagInfo, 2.x idTokenInfo)."""

    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str = ""


@dataclass(frozen=True)
class SessionExclusion:
    """The session the token is presented for, which must not count as 'another running
    session' (its own start resent, a session it supersedes, its own later events)."""

    # 1.6: sessions on this station's connector (a new start supersedes them).
    connector_id: int | None = None
    # 2.x: the charger's transactionId on this station.
    charger_transaction_id: str = ""


def id_tag_authorize(
    *,
    station_id: int,
    id_tag: str,
    token_type: str | None = None,
    session: SessionExclusion | None = None,
    concurrency: bool = True,
) -> IdTagInfo:
    """Decide whether `id_tag` may charge at the station (the rules: the module docstring).

    `token_type` is the 2.x idToken type (None for 1.6). `session` names the session the
    token is presented for; `concurrency=False` skips the ConcurrentTx check (a stop).
    """
    station = (
        Station.objects.filter(pk=station_id)
        .values("cpo_id", "free_usage", "cpo__one_session_per_tag")
        .get()
    )
    if token_type == NO_AUTHORIZATION:
        # Chargers set up to need no authorization send an empty token of this type.
        status = Verdict.ACCEPTED if station["free_usage"] else Verdict.INVALID
        return IdTagInfo(status=status)
    tag = _id_tag_find(cpo_id=station["cpo_id"], id_tag=id_tag)
    if tag is not None:
        _id_tag_touch(tag)
    verdict = _id_tag_verdict(tag, token_type=token_type)
    if station["free_usage"]:
        # Free usage lets anyone charge: the tag's own record does not matter.
        return IdTagInfo(status=Verdict.ACCEPTED, parent_id_tag=verdict.parent_id_tag)
    if (
        verdict.status == Verdict.ACCEPTED
        and concurrency
        and station["cpo__one_session_per_tag"]
        and _id_tag_in_other_session(
            tag, station_id=station_id, session=session or SessionExclusion()
        )
    ):
        return IdTagInfo(
            status=Verdict.CONCURRENT_TX,
            expiry_date=verdict.expiry_date,
            parent_id_tag=verdict.parent_id_tag,
        )
    return verdict


def id_token_authorize(
    *,
    station_id: int,
    id_token: str,
    token_type: str,
    session: SessionExclusion | None = None,
    concurrency: bool = True,
) -> IdTagInfo:
    """Decide whether a 2.x idToken (value + type) may charge at the station.

    As `id_tag_authorize`; a token longer than any tag can be is Invalid (or Accepted at
    a free-usage station).
    """
    if len(id_token) > ID_TOKEN_MAX:
        id_token = ""
    return id_tag_authorize(
        station_id=station_id,
        id_tag=id_token,
        token_type=token_type,
        session=session,
        concurrency=concurrency,
    )


def remote_start_refusal(*, station: Station, id_tag: str) -> str:
    """Why the backend would refuse a remote start with `id_tag` at `station` ('' when it
    would accept it): the panel refuses such a start before anything is sent, since the
    charger would start and the backend stop it at once (DeAuthorized)."""
    info = id_tag_authorize(
        station_id=station.pk,
        id_tag=id_tag,
        token_type=CENTRAL if station.ocpp_version in ("2.0.1", "2.1") else None,
    )
    if info.status == Verdict.ACCEPTED:
        return ""
    return REFUSAL_REASONS.get(info.status, f"the backend would answer {info.status}")


def refusal_reason(status: str) -> str:
    """The REFUSAL_REASONS sentence for a stored verdict ('' for Accepted or none)."""
    if not status or status == Verdict.ACCEPTED:
        return ""
    return REFUSAL_REASONS.get(status, f"the backend answered {status}")


def _id_tag_find(*, cpo_id: int | None, id_tag: str) -> IdTag | None:
    if cpo_id is None or not id_tag:
        return None
    # OCPP id tags are case-insensitive (CiString), and unique per CPO whatever the case.
    return IdTag.objects.filter(cpo_id=cpo_id).by_tag(id_tag).first()


def _id_tag_verdict(tag: IdTag | None, *, token_type: str | None) -> IdTagInfo:
    if tag is None:
        return IdTagInfo(status=Verdict.INVALID)
    parent = tag.parent_id_tag
    status = tag.effective_status
    if (
        status == Verdict.ACCEPTED
        and token_type not in (None, "", CENTRAL)
        and tag.token_type
        and tag.token_type != token_type
    ):
        # An RFID card's number typed into an app is not the card.
        return IdTagInfo(status=Verdict.INVALID)
    if status == Verdict.ACCEPTED and parent:
        group = _id_tag_find(cpo_id=tag.cpo_id, id_tag=parent)
        if group is not None and group.pk != tag.pk and group.effective_status != Verdict.ACCEPTED:
            status = group.effective_status
    return IdTagInfo(status=status, expiry_date=tag.expiry_date, parent_id_tag=parent)


def _id_tag_in_other_session(
    tag: IdTag | None, *, station_id: int, session: SessionExclusion
) -> bool:
    if tag is None:
        return False
    running = Transaction.objects.alias(id_tag_lower=Lower("id_tag")).filter(
        id_tag_lower=tag.tag.lower(),
        state=Transaction.State.ACTIVE,
        station__cpo_id=tag.cpo_id,
    )
    if session.connector_id is not None:
        # The sessions a 1.6 start on this connector supersedes (or repeats).
        here = Transaction.objects.filter(station_id=station_id, charger_transaction_id="")
        if session.connector_id > 0:
            here = here.filter(
                connector__connector_id=session.connector_id, connector__evse_id__isnull=True
            )
        else:
            here = here.filter(connector__isnull=True)
        running = running.exclude(pk__in=here.filter(state=Transaction.State.ACTIVE).values("pk"))
    if session.charger_transaction_id:
        running = running.exclude(
            station_id=station_id, charger_transaction_id=session.charger_transaction_id
        )
    return running.exists()


def _id_tag_touch(tag: IdTag) -> None:
    """Record that the tag was presented, at most once per LAST_USED_RESOLUTION."""
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if tag.last_used_at is not None and tag.last_used_at >= stale:
        return
    IdTag.objects.filter(pk=tag.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
    ).update(last_used_at=now)
    tag.last_used_at = now
