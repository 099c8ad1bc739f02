"""The local authorization list: the CPO's tags kept on each charger (SendLocalList).

The backend keeps, per station, the entries of the last list the charger accepted
(`Station.local_list`: lower-cased tag → [tag, status, expiry, group, type]) and its
version. From that:

- **in sync**: the charger accepted a list and its entries are the CPO's tags now;
- **send changes** (differential): the tags added, changed and removed since, with the
  version + 1; **send the full list** when the charger's copy is unknown, or after it
  answered VersionMismatch / Failed / NotSupported (the station page offers it);
- GetLocalListVersion's answer is kept (`local_list_reported_version`); a version other
  than the one the backend sent means the charger's copy is not what the backend thinks:
  out of sync, and the next send is a full one.

Results arrive through `@command_outcome`: an accepted SendLocalList makes the entries
it carried the charger's (the Command's payload is the record of what was sent).
1.6 id tags hold 20 characters: longer tags stay off 1.6 chargers' lists.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC

from django.db import transaction
from django.utils import timezone

from ocpp_spec.commands.v2 import DEFAULT_TOKEN_TYPE
from ocpp_spec.commands.v16 import ID_TAG_MAX as V16_ID_TAG_MAX
from stations.models import Command, IdTag, OcppVersion, Protocol, Station
from stations.services.command_outcomes import CommandOutcome, command_outcome
from stations.services.commands import command_request
from stations.services.home import ATTENTION_LIMIT, Attention, attention_check

logger = logging.getLogger(__name__)

ACCEPTED = "Accepted"
# What the station page says about a charger's answer to SendLocalList.
REFUSALS = {
    "VersionMismatch": "the charger's list version did not match: send the full list",
    "Failed": "the charger failed to store the list: send the full list again",
    "NotSupported": "the charger has no local authorization list",
}

Entry = list  # [tag, status, expiry ISO or None, group, token type]


@dataclass(frozen=True)
class LocalListState:
    """What the station page shows about a station's local list."""

    version: int | None
    reported_version: int | None
    status: str
    in_sync: bool
    # Tags to add, change or remove to be in sync (the differential update's size).
    changes: int
    # Why the last send was refused ('' when it was not).
    refusal: str
    # The next send must be a full one (the charger's copy is unknown or refused).
    needs_full: bool


@dataclass(frozen=True)
class SyncResult:
    sent: int
    in_sync: int
    offline: int


def _is_v16(station: Station) -> bool:
    return station.ocpp_version == OcppVersion.V16


def local_list_entries(*, cpo_id: int | None, v16: bool) -> dict[str, Entry]:
    """The CPO's tags as local list entries, keyed by lower-cased tag."""
    if cpo_id is None:
        return {}
    entries: dict[str, Entry] = {}
    for tag in IdTag.objects.filter(cpo_id=cpo_id).order_by("pk").iterator(chunk_size=2000):
        if v16 and len(tag.tag) > V16_ID_TAG_MAX:
            continue
        expiry = tag.expiry_date
        entries[tag.tag.lower()] = [
            tag.tag,
            tag.effective_status,
            expiry.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            if expiry
            else None,
            tag.parent_id_tag,
            # As the charger gets it: 1.6 has no types, 2.x needs one.
            "" if v16 else (tag.token_type or DEFAULT_TOKEN_TYPE),
        ]
    return entries


def _diff(held: dict[str, Entry], wanted: dict[str, Entry]) -> list[dict]:
    changes = [_entry_params(entry) for key, entry in wanted.items() if held.get(key) != entry]
    changes += [
        {"id_tag": entry[0], "status": None, "token_type": entry[4]}
        for key, entry in held.items()
        if key not in wanted
    ]
    return changes


def _entry_params(entry: Entry) -> dict:
    tag, status, expiry, parent, token_type = entry
    return {
        "id_tag": tag,
        "status": status,
        "expiry": expiry,
        "parent": parent,
        "token_type": token_type,
    }


def _needs_full(station: Station) -> bool:
    return (
        station.local_list_version is None
        or station.local_list_status != ACCEPTED
        or (
            station.local_list_reported_version is not None
            and station.local_list_reported_version != station.local_list_version
        )
    )


def local_list_state(*, station: Station, wanted: dict[str, Entry] | None = None) -> LocalListState:
    """The station's local list as the backend knows it (one query: the CPO's tags, unless
    `wanted` gives them, as `local_list_entries` for the station's version)."""
    if wanted is None:
        wanted = local_list_entries(cpo_id=station.cpo_id, v16=_is_v16(station))
    needs_full = _needs_full(station)
    changes = len(_diff(station.local_list or {}, wanted))
    in_sync = not needs_full and changes == 0
    return LocalListState(
        version=station.local_list_version,
        reported_version=station.local_list_reported_version,
        status=station.local_list_status,
        in_sync=in_sync,
        changes=len(wanted) if needs_full else changes,
        refusal=REFUSALS.get(station.local_list_status, ""),
        needs_full=needs_full,
    )


@attention_check("local_list")
def _out_of_sync(stations) -> list[Attention]:
    """Home's "needs attention": stations that were sent a local list and no longer hold
    the CPO's tags (changed since, or refused). A charger without a local list
    (NotSupported), or one never sent a list, is not flagged."""
    candidates = (
        stations.filter(cpo__isnull=False)
        .exclude(local_list_version__isnull=True, local_list_status="")
        .exclude(local_list_status="NotSupported")
        .order_by("pk")
    )
    wanted: dict[tuple[int, bool], dict[str, Entry]] = {}
    found: list[Attention] = []
    for station in candidates.iterator(chunk_size=200):
        key = (station.cpo_id, _is_v16(station))
        if key not in wanted:
            wanted[key] = local_list_entries(cpo_id=station.cpo_id, v16=key[1])
        state = local_list_state(station=station, wanted=wanted[key])
        if not state.in_sync:
            plural = "" if state.changes == 1 else "s"
            problem = f"Local list out of sync ({state.changes} change{plural} to send)"
            if state.refusal:
                problem = f"Local list refused: {state.refusal}"
            found.append(Attention(station, problem, station.local_list_updated_at, "local_list"))
            if len(found) >= ATTENTION_LIMIT:
                break
    return found


def local_list_params(
    *, station: Station, full: bool = False, wanted: dict[str, Entry] | None = None
) -> dict:
    """The send_local_list params that bring the charger in sync: the changes since the
    list it accepted (a differential update), or everything (`full`, or when the
    charger's copy is unknown or was refused)."""
    if wanted is None:
        wanted = local_list_entries(cpo_id=station.cpo_id, v16=_is_v16(station))
    version = (station.local_list_version or 0) + 1
    if full or _needs_full(station):
        version = max(version, (station.local_list_reported_version or 0) + 1)
        entries = [_entry_params(entry) for entry in wanted.values()]
        return {"version": version, "update_type": "Full", "entries": entries}
    return {
        "version": version,
        "update_type": "Differential",
        "entries": _diff(station.local_list or {}, wanted),
    }


def local_list_send(
    *, station: Station, user, full: bool = False, wanted: dict[str, Entry] | None = None
) -> Command:
    """Send the station's charger its local list (changes, or the full list)."""
    return command_request(
        station=station,
        kind="send_local_list",
        params=local_list_params(station=station, full=full, wanted=wanted),
        user=user,
    )


def local_list_sync_all(*, cpo, user) -> SyncResult:
    """Send every connected OCPP station of the CPO what it lacks (a bulk sync). The
    CPO's tags are read once per OCPP version family, not once per station."""
    sent = in_sync = offline = 0
    wanted = {v16: local_list_entries(cpo_id=cpo.pk, v16=v16) for v16 in (True, False)}
    stations = Station.objects.filter(cpo=cpo, protocol=Protocol.OCPP).exclude(ocpp_version="")
    for station in stations.order_by("pk"):
        entries = wanted[_is_v16(station)]
        if local_list_state(station=station, wanted=entries).in_sync:
            in_sync += 1
            continue
        if not station.connected:
            offline += 1
            continue
        try:
            local_list_send(station=station, user=user, wanted=entries)
        except ValueError as exc:
            logger.warning("Local list for %s not sent: %s", station.cbid, exc)
            continue
        sent += 1
    return SyncResult(sent=sent, in_sync=in_sync, offline=offline)


@command_outcome("send_local_list")
def local_list_sent(outcome: CommandOutcome) -> None:
    """An accepted list becomes the charger's; a refusal is kept for the station page."""
    status = (outcome.response or {}).get("status") or "Error"
    with transaction.atomic():
        station = Station.objects.select_for_update().get(pk=outcome.station_id)
        payload = outcome.payload
        version = payload.get("listVersion", payload.get("versionNumber"))
        if status == ACCEPTED:
            held = {} if payload.get("updateType") == "Full" else dict(station.local_list or {})
            for item in payload.get("localAuthorizationList", []):
                tag, entry = _entry_of_payload(item)
                if entry is None:
                    held.pop(tag.lower(), None)
                else:
                    held[tag.lower()] = entry
            station.local_list = held
            station.local_list_version = version
            station.local_list_reported_version = version
        station.local_list_status = status
        station.local_list_updated_at = timezone.now()
        station.save(
            update_fields=[
                "local_list",
                "local_list_version",
                "local_list_reported_version",
                "local_list_status",
                "local_list_updated_at",
            ]
        )


@command_outcome("get_local_list_version")
def local_list_version_read(outcome: CommandOutcome) -> None:
    """Keep the version the charger reports (1.6 listVersion, 2.x versionNumber)."""
    response = outcome.response or {}
    version = response.get("listVersion", response.get("versionNumber"))
    if not isinstance(version, int):
        return
    fields = {"local_list_reported_version": version, "local_list_updated_at": timezone.now()}
    if version == -1:
        fields["local_list_status"] = "NotSupported"
    Station.objects.filter(pk=outcome.station_id).update(**fields)


def _entry_of_payload(item: dict) -> tuple[str, Entry | None]:
    """A sent list item (either version) as the entry it makes (None: removed)."""
    if "idToken" in item:
        tag, token_type = item["idToken"]["idToken"], item["idToken"].get("type", "")
        info = item.get("idTokenInfo")
        if info is None:
            return tag, None
        group = (info.get("groupIdToken") or {}).get("idToken", "")
        expiry = info.get("cacheExpiryDateTime")
    else:
        tag, token_type = item["idTag"], ""
        info = item.get("idTagInfo")
        if info is None:
            return tag, None
        group = info.get("parentIdTag", "")
        expiry = info.get("expiryDate")
    return tag, [tag, info["status"], expiry, group, token_type]
