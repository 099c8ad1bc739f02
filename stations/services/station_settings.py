"""Station settings staff edit after claiming: identity for customers, place, connectors."""

from __future__ import annotations

import logging
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.utils import timezone

from cpo.audit import Action, audit_record
from stations.models import Connector, Station
from stations.services.access import station_check_write
from stations.services.notify import DeliveryFailed, station_notify

logger = logging.getLogger(__name__)

TEXT_FIELDS = {"name": 100, "street": 200, "postal_code": 20, "city": 100}
FLAG_FIELDS = ("free_usage", "reservation_enabled", "visible")
# Settings the charger's consumer reads (StationSession): it must reload them.
CHARGER_FIELDS = frozenset({"free_usage"})
COORDINATE_RANGES = {"latitude": Decimal(90), "longitude": Decimal(180)}
COORDINATE_STEP = Decimal("0.000001")
POWER_STEP = Decimal("0.1")
MAX_POWER_KW = Decimal(5000)
VISIBLE_RULE = (
    "A station can be visible to customers only when it has a CPO, a name, "
    "an address and coordinates."
)
# The name a pooled station gets at its first connection (sessions.pool_station_name):
# not a name to show customers.
AUTO_NAME_RE = re.compile(r"Created \d{4}-\d{2}-\d{2} \d{2}:\d{2}")


class SettingsError(Exception):
    """Invalid settings; `errors` maps each field ("connectors.<pk>.plug_type" for a
    connector's) to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def station_settings_update(*, station: Station, user, data: dict) -> Station:
    """Change a station's settings; only the keys present in `data` change.

    Keys: name, street, postal_code, city, country, latitude, longitude (None or "" clears
    them), free_usage, reservation_enabled, visible (booleans), and connectors: a list of
    {"id": connector pk, "plug_type": str, "max_power_kw": number | None}.
    "Visible to customers" holds only while the station has a CPO, a name, an address
    (street, city, country) and coordinates; a change that breaks it is refused, not
    silently un-publishing the station. Admins and technicians of the station's CPO (and
    superusers) only: PermissionDenied otherwise. Raises SettingsError with per-field
    messages and then changes nothing.
    """
    station_check_write(user=user, station=station)
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        # Lock the row with a write, not SELECT ... FOR UPDATE: same row lock on PostgreSQL,
        # and SQLite (development) takes its write lock now, waiting for a busy database,
        # instead of failing at once when a read lock must be upgraded later.
        Station.objects.filter(pk=station.pk).update(updated_at=timezone.now())
        locked = Station.objects.get(pk=station.pk)
        changed = _apply_station_fields(locked, data, errors)
        connectors = _connector_changes(locked, data.get("connectors"), errors)
        if not errors:
            _check_visible(locked, errors)
        if errors:
            raise SettingsError(errors)
        if changed:
            locked.save(update_fields=[*changed, "updated_at"])
        for connector, fields in connectors:
            connector.save(update_fields=[*fields, "updated_at"])
        if changed or connectors:
            details = {"fields": changed, "connectors": {c.pk: f for c, f in connectors}}
            audit_record(
                action=Action.STATION_SETTINGS_CHANGED,
                user=user,
                cpo=locked.cpo_id,
                target=locked.cbid,
                details=details,
            )
        if CHARGER_FIELDS & set(changed) and locked.connected:
            channel_name = locked.channel_name
            transaction.on_commit(lambda: _refresh_charger(locked.cbid, channel_name))
    return locked


def _apply_station_fields(station: Station, data: dict, errors: dict) -> list[str]:
    values: dict[str, Any] = {}
    for field, max_length in TEXT_FIELDS.items():
        if field in data:
            value = str(data[field] or "").strip()
            if len(value) > max_length:
                errors.setdefault(field, []).append(f"At most {max_length} characters.")
            values[field] = value
    if "country" in data:
        country = str(data["country"] or "").strip().upper()
        if country and not re.fullmatch(r"[A-Z]{2}", country):
            errors.setdefault("country", []).append(
                "A two-letter country code (ISO 3166-1), e.g. FI."
            )
        values["country"] = country
    for field, limit in COORDINATE_RANGES.items():
        if field in data:
            values[field] = _coordinate(field, data[field], limit, errors)
    for field in FLAG_FIELDS:
        if field in data:
            flag = _flag(data[field])
            if flag is None:
                errors.setdefault(field, []).append("Must be true or false.")
            values[field] = flag
    lat = values.get("latitude", station.latitude)
    lon = values.get("longitude", station.longitude)
    if "latitude" not in errors and "longitude" not in errors and (lat is None) != (lon is None):
        errors.setdefault("latitude" if lat is None else "longitude", []).append(
            "Give both latitude and longitude, or neither."
        )
    changed = []
    for field, value in values.items():
        if getattr(station, field) != value:
            setattr(station, field, value)
            changed.append(field)
    return changed


def _coordinate(field: str, raw: Any, limit: Decimal, errors: dict) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        errors.setdefault(field, []).append("Must be a number.")
        return None
    if not value.is_finite() or not -limit <= value <= limit:
        errors.setdefault(field, []).append(f"Must be between -{limit} and {limit}.")
        return None
    # The column keeps 6 decimals (about 0.1 m): more is noise from a map click.
    return value.quantize(COORDINATE_STEP, rounding=ROUND_HALF_UP)


def _flag(raw: Any) -> bool | None:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "on", "1", "yes"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("false", "off", "0", "no", ""):
        return False
    return None


def _connector_changes(
    station: Station, items: Any, errors: dict
) -> list[tuple[Connector, list[str]]]:
    if items is None:
        return []
    connectors = {c.pk: c for c in station.connectors.all()}
    changes = []
    for item in items:
        connector = connectors.get(item.get("id"))
        if connector is None:
            errors.setdefault("connectors", []).append(
                f"Connector {item.get('id')!r} is not one of this station's."
            )
            continue
        prefix = f"connectors.{connector.pk}"
        fields = []
        if "plug_type" in item:
            plug_type = item["plug_type"] or ""
            if plug_type and plug_type not in Connector.PlugType.values:
                errors.setdefault(f"{prefix}.plug_type", []).append("Unknown plug type.")
            elif plug_type != connector.plug_type:
                connector.plug_type = plug_type
                fields.append("plug_type")
        if "max_power_kw" in item:
            power = _power(item["max_power_kw"], f"{prefix}.max_power_kw", errors)
            if power != connector.max_power_kw and f"{prefix}.max_power_kw" not in errors:
                connector.max_power_kw = power
                fields.append("max_power_kw")
        if fields:
            changes.append((connector, fields))
    return changes


def _power(raw: Any, key: str, errors: dict) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        errors.setdefault(key, []).append("Must be a number of kW.")
        return None
    if not value.is_finite() or not Decimal(0) < value <= MAX_POWER_KW:
        errors.setdefault(key, []).append(f"Must be more than 0 and at most {MAX_POWER_KW} kW.")
        return None
    return value.quantize(POWER_STEP, rounding=ROUND_HALF_UP)


def visibility_missing(station: Station) -> list[str]:
    """What the station lacks to be visible to customers (empty: it may be)."""
    missing = []
    if station.cpo_id is None:
        missing.append("a CPO")
    if not station.name.strip():
        missing.append("a name")
    elif AUTO_NAME_RE.fullmatch(station.name.strip()):
        missing.append("a name of its own (not the automatic “Created …”)")
    if not station.has_address:
        missing.append("an address (street, city and country)")
    if not station.has_coordinates:
        missing.append("coordinates")
    return missing


def _check_visible(station: Station, errors: dict) -> None:
    if not station.visible:
        return
    missing = visibility_missing(station)
    if missing:
        errors.setdefault("visible", []).append(f"{VISIBLE_RULE} Missing: {', '.join(missing)}.")


def _refresh_charger(cbid: str, channel_name: str) -> None:
    try:
        station_notify(channel_name=channel_name, event_type="station.refresh")
    except DeliveryFailed as exc:
        # The setting is saved; the consumer picks it up at the next reconnect.
        logger.warning("Could not tell %s's consumer to reload its settings: %s", cbid, exc)
