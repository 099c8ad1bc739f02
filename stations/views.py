"""The CPO panel: Settings → Station List, Add new station, the station page, Connect a charger.

Every read starts from `Station.objects.for_user(request.user)`: another CPO's station is a
404. Writes need the admin role in the CPO concerned (a viewer gets 403); the rules live in
stations.services.claiming.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from cpo.models import Membership
from ocpp_gateway.identity import SUBPROTOCOLS
from stations.forms import IDENTITY_LABELS, StationAddForm, StationCpoForm
from stations.models import ConnectionAttempt, OcppVersion, Protocol, Station
from stations.services.claiming import (
    ClaimError,
    addable_cpos,
    ocpp_endpoint_url,
    station_assign,
    station_claim,
)

STATIONS_PER_PAGE = 25
ATTEMPTS_PER_PAGE = 50
# "Connected during the last month".
RECENT_DAYS = 30


@login_required
def station_list(request: HttpRequest) -> HttpResponse:
    """Station List: the user's stations, newest first, searchable, paginated.

    A fixed number of queries whatever the page size: CPOs are joined, connectors
    prefetched in one query.
    """
    user = request.user
    stations = Station.objects.for_user(user).select_related("cpo").prefetch_related("connectors")
    query = request.GET.get("q", "").strip()
    if query:
        stations = stations.filter(Q(cbid__icontains=query) | Q(name__icontains=query))
    recent = request.GET.get("recent") == "1"
    if recent:
        stations = stations.connected_since(RECENT_DAYS)
    pool = request.GET.get("pool", "") if user.is_superuser else ""
    if pool == "only":
        stations = stations.in_pool()
    elif pool == "exclude":
        stations = stations.exclude(cpo__isnull=True)
    stations = stations.order_by("-created_at", "-id")

    page = Paginator(stations, STATIONS_PER_PAGE).get_page(request.GET.get("page"))
    # The filters, kept in the pagination links.
    filters = {"q": query, "recent": "1" if recent else "", "pool": pool}
    return render(
        request,
        "stations/station_list.html",
        {
            "page": page,
            "stations": page.object_list,
            "query": query,
            "recent": recent,
            "pool": pool,
            "filtered": bool(query or recent or pool),
            "page_query": urlencode({k: v for k, v in filters.items() if v}),
            "can_add": user.is_superuser or addable_cpos(user).exists(),
        },
    )


@login_required
def station_add(request: HttpRequest) -> HttpResponse:
    """Add new station: claim a pooled OCPP charger, or register an Ensto / Remotec one."""
    user = request.user
    cpos = addable_cpos(user)
    if not cpos.exists():
        if user.is_superuser or not Membership.objects.filter(user=user).exists():
            # Not a permission problem: there is no CPO to add to. Explain instead.
            return render(request, "stations/station_add_no_cpo.html")
        raise PermissionDenied("Only CPO admins can add stations.")

    form = StationAddForm(request.POST or None, cpos=cpos)
    if request.method == "POST" and form.is_valid():
        try:
            station = station_claim(
                user=user,
                protocol=form.cleaned_data["protocol"],
                cbid=form.cleaned_data["cbid"],
                cpo=form.cleaned_data["cpo"],
            )
        except ClaimError as exc:
            field = exc.field if exc.field in form.fields else None
            if field == "cpo" and form.cpo_is_hidden:
                field = None
            form.add_error(field, exc.message)
        else:
            if station.protocol != Protocol.OCPP:
                detail = " It is waiting for its connection."
            elif station.connected:
                detail = ""
            else:
                detail = " It is offline now; it is accepted when it connects again."
            messages.success(
                request, f"Station {station.cbid} was added to {station.cpo.name}.{detail}"
            )
            return redirect("stations:list")
    return render(
        request,
        "stations/station_form.html",
        {"form": form, "identity_labels": IDENTITY_LABELS},
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
def station_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The station page: identity, CPO, connection, connectors, boot facts, assignments."""
    station = get_object_or_404(Station.objects.for_user(request.user).select_related("cpo"), pk=pk)
    cpos = _cpo_choices(request.user, station)
    form = StationCpoForm(cpos=cpos) if cpos is not None else None
    return _render_detail(request, station, form)


@login_required
@require_POST
def station_change_cpo(request: HttpRequest, pk: int) -> HttpResponse:
    """Change CPO: for admins of both CPOs, and superusers."""
    station = get_object_or_404(Station.objects.for_user(request.user).select_related("cpo"), pk=pk)
    cpos = _cpo_choices(request.user, station)
    if cpos is None:
        raise PermissionDenied("Only an admin of the station's CPO may move it.")
    form = StationCpoForm(request.POST, cpos=cpos)
    if not form.is_valid():
        return _render_detail(request, station, form, status=400)
    previous = station.cpo
    # PermissionDenied from the service (not admin of both) becomes a 403.
    station = station_assign(
        station=station, cpo=form.cleaned_data["cpo"], by=request.user, source="panel"
    )
    messages.success(
        request,
        f"Station {station.cbid} moved from {previous.name if previous else 'the pool'} "
        f"to {station.cpo.name}.",
    )
    return redirect("stations:detail", pk=station.pk)


def _cpo_choices(user, station: Station):
    """The CPOs the user may move `station` to, or None when they may not move it at all."""
    admin_cpos = addable_cpos(user)
    if not user.is_superuser and not admin_cpos.filter(pk=station.cpo_id).exists():
        return None
    if station.cpo_id is None:
        return admin_cpos
    return admin_cpos.exclude(pk=station.cpo_id)


def _render_detail(
    request: HttpRequest, station: Station, form: StationCpoForm | None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "stations/station_detail.html",
        {
            "station": station,
            "connectors": station.connectors.all(),
            "assignments": station.assignments.all(),
            "cpo_form": form,
            "endpoint_url": ocpp_endpoint_url(station.cbid),
        },
        status=status,
    )


@login_required
def connect_charger(request: HttpRequest) -> HttpResponse:
    """Connect a charger: the backend URL to set on it, the OCPP versions we speak."""
    base = settings.OCPP_PUBLIC_URL.rstrip("/")
    host = base.split("://", 1)[-1]
    versions = [
        {"subprotocol": subprotocol, "label": OcppVersion(version).label}
        for subprotocol, version in SUBPROTOCOLS.items()
    ]
    return render(
        request,
        "stations/connect.html",
        {
            "ws_url": f"ws://{host}/ocpp/",
            "wss_url": f"wss://{host}/ocpp/",
            "configured_url": ocpp_endpoint_url(""),
            "versions": versions,
        },
    )


@login_required
def connection_attempts(request: HttpRequest) -> HttpResponse:
    """Refused connection attempts (bad CBID, credentials, subprotocol): superusers only."""
    if not request.user.is_superuser:
        raise PermissionDenied("Only system administrators see refused connections.")
    page = Paginator(ConnectionAttempt.objects.all(), ATTEMPTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "stations/connection_attempts.html", {"page": page})


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("stations:list")
