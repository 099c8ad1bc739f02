"""JSON endpoints.

Public, read-only: the stations customers may see (`Station.objects.visible()`), for
customer apps and maps. They carry what a driver needs (place, connectors, availability)
and nothing internal: no CBID, no charger details, no CPO staff data, no database ids (a
station is named by its random `public_id`). Any site may read them from a browser
(CORS: `Access-Control-Allow-Origin: *`, preflight answered); no cookie is ever used.

For logged-in staff (session + CSRF, like the panel): a station's commands, so that a
command requested over HTTP in any process reaches the charger wherever it is connected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET, require_http_methods

from ocpp_spec.times import utc_iso
from stations.models import Command, Connector, Station
from stations.services.access import station_get_for_user
from stations.services.commands import (
    command_display,
    command_request,
    station_command_history,
)

PAGE_SIZE = 500
# Connector status (1.6 ChargePointStatus, 2.x ConnectorStatusEnumType) → what a driver
# needs to know. Anything else (no status yet, a vendor's word) is "unknown".
AVAILABILITY = {
    "Available": "available",
    "Preparing": "occupied",
    "Charging": "occupied",
    "SuspendedEV": "occupied",
    "SuspendedEVSE": "occupied",
    "Finishing": "occupied",
    "Reserved": "occupied",
    "Occupied": "occupied",
    "Faulted": "out_of_order",
    "Unavailable": "out_of_order",
}
STATION_DOWN = {"Faulted", "Unavailable"}  # a 1.6 connector-0 status covers every connector
PUBLIC_STATION_FIELDS = (
    "public_id",
    "name",
    "street",
    "postal_code",
    "city",
    "country",
    "latitude",
    "longitude",
    "connected",
    "status",
)


# What a browser on another site may do with the public endpoints (CORS).
CORS_ALLOWED_METHODS = "GET, HEAD, OPTIONS"
CORS_MAX_AGE = 86400
HEADER_LIST = re.compile(r"^[A-Za-z0-9-]+(\s*,\s*[A-Za-z0-9-]+)*$")


def public_read(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET and HEAD for any site: CORS headers on every answer, the preflight answered.

    No credentials: the answers are the same for everyone, so `*` is right and a
    browser sends no cookie. Other methods get 405.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = CORS_ALLOWED_METHODS
            requested = request.headers.get("Access-Control-Request-Headers", "").strip()
            if HEADER_LIST.match(requested):
                # Read-only and cookie-less: whatever plain headers a client library adds.
                response["Access-Control-Allow-Headers"] = requested
            response["Access-Control-Max-Age"] = str(CORS_MAX_AGE)
            response["Vary"] = "Access-Control-Request-Headers"
        elif request.method in ("GET", "HEAD"):
            response = view(request, *args, **kwargs)
        else:
            response = HttpResponseNotAllowed(["GET", "HEAD", "OPTIONS"])
        response["Access-Control-Allow-Origin"] = "*"
        return response

    return wrapper


def _public_stations():
    connectors = Connector.objects.filter(connector_id__gt=0).only(
        "id",
        "station_id",
        "evse_id",
        "connector_id",
        "status",
        "plug_type",
        "max_power_kw",
    )
    return (
        Station.objects.visible()
        .only(*PUBLIC_STATION_FIELDS)
        .prefetch_related(Prefetch("connectors", queryset=connectors))
    )


def availability(station: Station, connector: Connector) -> str:
    """available / occupied / out_of_order / unknown, as a driver should read it."""
    if not station.connected:
        return "unknown"  # Offline: the last status may be long stale.
    if station.status in STATION_DOWN:
        return "out_of_order"
    return AVAILABILITY.get(connector.status, "unknown")


def _station_json(station: Station) -> dict:
    return {
        "id": str(station.public_id),
        "name": station.name,
        "address": {
            "street": station.street,
            "postal_code": station.postal_code,
            "city": station.city,
            "country": station.country,
        },
        "coordinates": {
            "latitude": float(station.latitude),
            "longitude": float(station.longitude),
        }
        if station.has_coordinates
        else None,
        "connectors": [
            {
                "evse_id": connector.evse_id,
                "connector_id": connector.connector_id,
                "plug_type": connector.plug_type or None,
                "plug_type_name": connector.get_plug_type_display() or None,
                "max_power_kw": (
                    float(connector.max_power_kw) if connector.max_power_kw is not None else None
                ),
                "availability": availability(station, connector),
            }
            for connector in station.connectors.all()
        ],
    }


# Far beyond any fleet (PAGE_SIZE stations a page), far within a bigint offset.
MAX_PAGE = 10**9


@public_read
def station_list(request: HttpRequest) -> JsonResponse:
    """GET /api/stations/?page=N: visible stations, PAGE_SIZE per page (two queries)."""
    try:
        page = max(int(request.GET.get("page", "1")), 1)
    except ValueError:
        return JsonResponse({"error": "page must be a positive integer"}, status=400)
    if page > MAX_PAGE:
        # Its offset would not fit the database's integers ("bigint out of range": a 500).
        return JsonResponse({"error": "no such page"}, status=404)
    start = (page - 1) * PAGE_SIZE
    # One more than a page tells whether there is a next one, without a COUNT query. By
    # the database id: a stable order that the answer does not show.
    stations = list(_public_stations().order_by("id")[start : start + PAGE_SIZE + 1])
    has_next = len(stations) > PAGE_SIZE
    # Absolute: a map on another site would resolve a bare path against its own.
    next_url = request.build_absolute_uri(f"{request.path}?page={page + 1}")
    response = JsonResponse(
        {
            "stations": [_station_json(s) for s in stations[:PAGE_SIZE]],
            "next": next_url if has_next else None,
        }
    )
    response["Cache-Control"] = "public, max-age=30"
    return response


@public_read
def station_detail(request: HttpRequest, public_id: UUID) -> JsonResponse:
    """GET /api/stations/<public id>/: one visible station; 404 for any other."""
    station = _public_stations().filter(public_id=public_id).first()
    if station is None:
        return JsonResponse({"error": "not found"}, status=404)
    response = JsonResponse(_station_json(station))
    response["Cache-Control"] = "public, max-age=30"
    return response


# ---- commands (staff) -------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc_iso(value)


def command_json(command: Command) -> dict:
    payload, response = command_display(command)  # charger passwords blanked out
    return {
        "id": command.pk,
        "action": command.action,
        "payload": payload,
        "status": command.status,
        "status_display": command.get_status_display(),
        "final": command.is_final,
        "response": response,
        "error": command.error,
        "requested_by": command.requested_by.get_username() if command.requested_by else None,
        "created_at": _iso(command.created_at),
        "sent_at": _iso(command.sent_at),
        "completed_at": _iso(command.completed_at),
    }


@require_http_methods(["GET", "POST"])
def station_commands(request: HttpRequest, pk: int) -> JsonResponse:
    """GET: the station's latest commands. POST {"kind": ..., "params": {...}}: request one.

    Logged-in staff only (401 otherwise); viewers may read (403 on POST); another CPO's
    station is a 404. POST answers 201 with the Command as it stands (queued, or already
    offline/error); poll GET .../commands/<id>/ for the charger's answer.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "login required"}, status=401)
    station = station_get_for_user(user=request.user, pk=pk)
    if request.method == "GET":
        history = station_command_history(station=station)
        return JsonResponse({"commands": [command_json(c) for c in history]})
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"error": "the body must be JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("params", {}), dict):
        return JsonResponse({"error": 'expected {"kind": ..., "params": {...}}'}, status=400)
    try:
        command = command_request(
            station=station,
            kind=str(body.get("kind", "")),
            params=body.get("params", {}),
            user=request.user,
        )
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    except ValueError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(command_json(command), status=201)


@require_GET
def station_command_detail(request: HttpRequest, pk: int, command_pk: int) -> JsonResponse:
    """GET one command of a station the user may see (for polling its outcome)."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "login required"}, status=401)
    station = station_get_for_user(user=request.user, pk=pk)
    command = get_object_or_404(station.commands.select_related("requested_by"), pk=command_pk)
    return JsonResponse(command_json(command))
