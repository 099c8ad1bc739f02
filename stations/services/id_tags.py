"""Id tags: whether a token may charge at a station (1.6 idTag, 2.x idToken by value)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from stations.models import IdTag, Station


@dataclass
class IdTagInfo:
    """The backend's verdict on an id tag (1.6 idTagInfo, 2.x idTokenInfo)."""

    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str = ""


def id_tag_authorize(*, station_id: int, id_tag: str) -> IdTagInfo:
    """Decide whether `id_tag` may charge at the station.

    Accepted when the station's CPO holds the tag as Accepted and unexpired, or when the
    station has free usage. Otherwise the tag's own status (Blocked, Expired, Invalid);
    an unknown tag, or any tag at a station in the pool, is Invalid.
    """
    station = Station.objects.only("cpo_id", "free_usage").get(pk=station_id)
    tag = _id_tag_find(cpo_id=station.cpo_id, id_tag=id_tag)
    verdict = _id_tag_verdict(tag)
    if verdict.status != IdTag.Status.ACCEPTED and station.free_usage:
        # Free usage lets anyone charge: the tag's own record does not matter.
        return IdTagInfo(status=IdTag.Status.ACCEPTED, parent_id_tag=verdict.parent_id_tag)
    return verdict


def _id_tag_find(*, cpo_id: int | None, id_tag: str) -> IdTag | None:
    if cpo_id is None or not id_tag:
        return None
    # OCPP id tags are case-insensitive (CiString); prefer the exact spelling if both exist.
    candidates = list(IdTag.objects.filter(cpo_id=cpo_id, tag__iexact=id_tag).order_by("pk")[:10])
    for candidate in candidates:
        if candidate.tag == id_tag:
            return candidate
    return candidates[0] if candidates else None


def _id_tag_verdict(tag: IdTag | None) -> IdTagInfo:
    if tag is None:
        return IdTagInfo(status=IdTag.Status.INVALID)
    parent = tag.parent_id_tag
    if tag.status == IdTag.Status.ACCEPTED:
        if tag.expiry_date is not None and tag.expiry_date <= timezone.now():
            return IdTagInfo(
                status=IdTag.Status.EXPIRED, expiry_date=tag.expiry_date, parent_id_tag=parent
            )
        return IdTagInfo(
            status=IdTag.Status.ACCEPTED, expiry_date=tag.expiry_date, parent_id_tag=parent
        )
    return IdTagInfo(status=tag.status, expiry_date=tag.expiry_date, parent_id_tag=parent)
