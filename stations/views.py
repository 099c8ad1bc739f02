"""The CPO panel: Settings → Station List, Add new station, the station page, Connect a charger,
Station settings, commands to chargers and the station log.

Every station is looked up through `station_get_for_user` (stations.services.access):
another CPO's station is a 404. Writes need a role in the CPO concerned (a viewer gets
403): claiming and moving need an admin (stations.services.claiming); settings, commands
and passwords an admin or a technician (`station_check_write`).
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from cpo.models import Membership
from ocpp_spec.identity import SUBPROTOCOLS
from ocpp_spec.passwords import REDACTED, is_secret_setting
from stations.forms import (
    COMMAND_FORMS,
    IDENTITY_LABELS,
    CommandForm,
    StationAddForm,
    StationCpoForm,
    StationSettingsForm,
    command_kinds_for,
)
from stations.list_columns import station_list_extra_columns
from stations.models import (
    Command,
    ConnectionAttempt,
    OcppMessage,
    OcppVersion,
    Protocol,
    RegistrationStatus,
    Station,
    Transaction,
)
from stations.services.access import station_get_for_user, user_may_command
from stations.services.claiming import (
    ClaimError,
    ClaimRateLimited,
    addable_cpos,
    ocpp_endpoint_url,
    station_assign,
    station_claim,
    station_claim_code,
)
from stations.services.commands import (
    command_display,
    command_request,
    station_command_history,
)
from stations.services.home import StationState, stations_in_state
from stations.services.id_tags import refusal_reason, remote_start_refusal
from stations.services.local_list import local_list_state
from stations.services.passwords import station_password_issue
from stations.services.station_log import message_payload_text, station_log
from stations.services.station_settings import (
    SettingsError,
    station_settings_update,
    visibility_missing,
)
from stations.services.transaction_timeline import (
    transaction_signed_values,
    transactions_energy_so_far,
    transactions_power_from_energy,
)

STATIONS_PER_PAGE = 25
ATTEMPTS_PER_PAGE = 50
# "Connected during the last month".
RECENT_DAYS = 30
LOG_PER_PAGE = 50
# The station log's "since" choices; the service's default is the middle one.
LOG_WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
LOG_DEFAULT_WINDOW = "24h"
# OCPP-J frame types; 5 and 6 come from OCPP 2.1 chargers only.
MESSAGE_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR", 5: "CALLRESULTERROR", 6: "SEND"}
COMMAND_HISTORY_LENGTH = 20
# Sessions whose tag the backend refused, shown on the station page with the reason.
BACKEND_STOPS_WINDOW = timedelta(hours=24)
BACKEND_STOPS_SHOWN = 3
# A 2.x FullInventory can hold thousands of variables; the page shows the first ones.
VARIABLES_SHOWN = 500


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
    state = request.GET.get("state", "")
    if state in StationState.values:
        stations = stations_in_state(stations, state)
    else:
        state = ""
    pool = request.GET.get("pool", "") if user.is_superuser else ""
    if pool == "only":
        stations = stations.in_pool()
    elif pool == "exclude":
        stations = stations.exclude(cpo__isnull=True)
    stations = stations.order_by("-created_at", "-id")

    page = Paginator(stations, STATIONS_PER_PAGE).get_page(request.GET.get("page"))
    extra_columns = station_list_extra_columns(page.object_list)
    # The filters, kept in the pagination links.
    filters = {"q": query, "recent": "1" if recent else "", "pool": pool, "state": state}
    return render(
        request,
        "stations/station_list.html",
        {
            "page": page,
            "stations": page.object_list,
            "query": query,
            "recent": recent,
            "pool": pool,
            "state": state,
            "states": StationState.choices,
            "filtered": bool(query or recent or pool or state),
            "page_query": urlencode({k: v for k, v in filters.items() if v}),
            "can_add": user.is_superuser or addable_cpos(user).exists(),
            "extra_columns": extra_columns,
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

    form = StationAddForm(
        request.POST or None, cpos=cpos, require_proof=settings.CLAIM_REQUIRE_PROOF
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            station = station_claim(
                user=user,
                protocol=form.cleaned_data["protocol"],
                cbid=form.cleaned_data["cbid"],
                cpo=form.cleaned_data["cpo"],
                proof=form.cleaned_data.get("proof", ""),
            )
        except ClaimError as exc:
            field = exc.field if exc.field in form.fields else None
            if field == "cpo" and form.cpo_is_hidden:
                field = None
            form.add_error(field, exc.message)
            if isinstance(exc, ClaimRateLimited):
                status = 429
        else:
            if station.protocol != Protocol.OCPP:
                detail = " It is waiting for its connection."
            elif station.connected:
                detail = ""
            else:
                detail = " It is offline now; it is accepted when it connects again."
            added = f"Station {station.cbid} was added to {station.cpo.name}.{detail}"
            if form.cleaned_data.get("generate_password") and station.protocol == Protocol.OCPP:
                return _issue_password(request, station, done=added)
            messages.success(request, added)
            return redirect("stations:list")
    protocol = form["protocol"].value() or Protocol.OCPP
    return render(
        request,
        "stations/station_form.html",
        {
            "form": form,
            "identity_labels": IDENTITY_LABELS,
            "vendor_protocol": protocol != Protocol.OCPP,
            "strong_mode": settings.CLAIM_REQUIRE_PROOF,
        },
        status=status if status != 200 else 400 if form.is_bound and form.errors else 200,
    )


def _issue_password(request: HttpRequest, station: Station, *, done: str = "") -> HttpResponse:
    """Issue a charger password and show it once.

    Rendered, not redirected: a one-time secret must not travel through the messages
    framework (its cookie storage would keep it on the client).
    """
    try:
        issued = station_password_issue(station=station, user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("stations:detail", pk=station.pk)
    response = render(
        request,
        "stations/station_password.html",
        {
            "station": station,
            "issued": issued,
            "done": done,
            "password_hex": issued.password.encode("utf-8").hex(),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def station_password(request: HttpRequest, pk: int) -> HttpResponse:
    """Generate a new charger (Basic-auth) password for the station; admins and technicians."""
    station = station_get_for_user(user=request.user, pk=pk)
    return _issue_password(request, station)


@login_required
def station_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The station page: identity, CPO, connection, connectors, boot facts, assignments."""
    station = station_get_for_user(user=request.user, pk=pk, select_related=["cpo"])
    cpos = _cpo_choices(request.user, station)
    form = StationCpoForm(cpos=cpos) if cpos is not None else None
    return _render_detail(request, station, form)


@login_required
@require_POST
def station_change_cpo(request: HttpRequest, pk: int) -> HttpResponse:
    """Change CPO: for admins of both CPOs, and superusers."""
    station = station_get_for_user(user=request.user, pk=pk, select_related=["cpo"])
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
    request: HttpRequest,
    station: Station,
    form: StationCpoForm | None,
    status: int = 200,
    command_form: CommandForm | None = None,
) -> HttpResponse:
    connectors = list(station.connectors.all())
    transactions = _active_transactions(station)
    can_command = user_may_command(user=request.user, station=station)
    command_forms = []
    if station.protocol == Protocol.OCPP and can_command:
        for kind in command_kinds_for(station):
            if command_form is not None and command_form.kind == kind:
                command_forms.append(command_form)
            else:
                command_forms.append(
                    COMMAND_FORMS[kind](
                        station=station, connectors=connectors, transactions=transactions
                    )
                )
    return render(
        request,
        "stations/station_detail.html",
        {
            "station": station,
            "assignments": station.assignments.all(),
            "cpo_form": form,
            "endpoint_url": ocpp_endpoint_url(station.cbid),
            "can_command": can_command,
            "command_forms": command_forms,
            "command_form_failed": command_form,
            "is_pending": station.registration_status != RegistrationStatus.ACCEPTED,
            # Strong claim mode: system administrators give a pool station's code to its owner.
            "claim_code": station_claim_code(station)
            if request.user.is_superuser
            and settings.CLAIM_REQUIRE_PROOF
            and station.cpo_id is None
            and station.protocol == Protocol.OCPP
            else "",
            "local_list": local_list_state(station=station)
            if station.protocol == Protocol.OCPP and station.cpo_id
            else None,
            **_live_context(station, connectors=connectors, transactions=transactions),
        },
        status=status,
    )


def _active_transactions(station: Station) -> list[Transaction]:
    """The station's running transactions, each with `energy_so_far_wh` (None: unknown),
    `latest_power_w` (the last total power sample; else the mean power between the last two
    register readings), `duration` and `has_signed_values`."""
    transactions = list(
        station.transactions.filter(state=Transaction.State.ACTIVE)
        .with_signed_values()
        .with_latest_power()
        .select_related("connector")
        .order_by("-start_time", "-id")
    )
    energy = transactions_energy_so_far(transactions)
    derived = transactions_power_from_energy(
        [tx for tx in transactions if tx.latest_power_w is None]
    )
    now = timezone.now()
    for tx in transactions:
        tx.energy_so_far_wh = energy.get(tx.pk)
        tx.duration = now - tx.start_time if tx.start_time else None
        if tx.latest_power_w is None:
            tx.latest_power_w = derived.get(tx.pk)
    return transactions


def _live_context(station: Station, *, connectors=None, transactions=None) -> dict:
    """What the station page refreshes while it is open: the connection state, connectors,
    the current transaction, the command history and the stored configuration."""
    if connectors is None:
        connectors = list(station.connectors.all())
    if transactions is None:
        transactions = _active_transactions(station)
    commands = list(station_command_history(station=station, limit=COMMAND_HISTORY_LENGTH))
    for command in commands:
        payload, response = command_display(command)
        command.payload_text = _compact_json(payload)
        command.response_text = "" if response is None else _compact_json(response)
    variables = list(station.variables.all()[: VARIABLES_SHOWN + 1])
    for variable in variables:
        # Rows stored before passwords were blanked out on write.
        if variable.value and is_secret_setting(variable.component, variable.variable):
            variable.value = REDACTED
    backend_stops = list(
        station.transactions.exclude(id_tag_status__in=["", "Accepted"])
        .filter(created_at__gte=timezone.now() - BACKEND_STOPS_WINDOW)
        .select_related("connector")
        .order_by("-created_at", "-id")[:BACKEND_STOPS_SHOWN]
    )
    for tx in backend_stops:
        tx.refusal = refusal_reason(tx.id_tag_status)
    return {
        "backend_stops": backend_stops,
        "connectors": connectors,
        "transactions": transactions,
        "commands": commands,
        "commands_pending": any(not c.is_final for c in commands),
        "variables": variables[:VARIABLES_SHOWN],
        "variables_truncated": len(variables) > VARIABLES_SHOWN,
        "is_v2": station.ocpp_version in (OcppVersion.V201, OcppVersion.V21),
    }


def _compact_json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


@login_required
@require_GET
def station_live(request: HttpRequest, pk: int) -> HttpResponse:
    """The station page's live part (HTML), polled by static/js/station_live.js.

    `X-Commands-Pending: 1` while a command is queued or sent: the page then polls fast.
    """
    station = station_get_for_user(user=request.user, pk=pk)
    context = {"station": station, **_live_context(station)}
    response = render(request, "stations/_live.html", context)
    response["X-Commands-Pending"] = "1" if context["commands_pending"] else "0"
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def station_command(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a command to the station's charger: form → command_request → back to the page."""
    station = station_get_for_user(user=request.user, pk=pk, write=True, select_related=["cpo"])
    form_class = COMMAND_FORMS.get(request.POST.get("kind", ""))
    if form_class is None:
        messages.error(request, "Unknown command.")
        return redirect(reverse("stations:detail", args=[station.pk]) + "#commands")
    form = form_class(
        request.POST,
        station=station,
        connectors=station.connectors.all(),
        transactions=_active_transactions(station),
    )
    if not form.is_valid():
        return _render_detail(request, station, _cpo_form(request.user, station), 400, form)
    if form.kind == "remote_start":
        refusal = remote_start_refusal(station=station, id_tag=form.cleaned_data["id_tag"])
        if refusal:
            # The charger would start, and the backend stop it at once (DeAuthorized).
            form.add_error("id_tag", f"Not sent: {refusal}.")
            return _render_detail(request, station, _cpo_form(request.user, station), 400, form)
    try:
        # PermissionDenied (a role lost meanwhile) becomes a 403.
        command = command_request(
            station=station, kind=form.kind, params=form.params(), user=request.user
        )
    except ValueError as exc:
        if station.protocol != Protocol.OCPP or form.kind not in command_kinds_for(station):
            # No form of this kind on the page to show the error beside.
            messages.error(request, f"{form.action_name} was not sent: {exc}")
            return redirect(reverse("stations:detail", args=[station.pk]) + "#commands")
        form.add_error(None, str(exc))
        return _render_detail(request, station, _cpo_form(request.user, station), 400, form)
    _command_message(request, station, form, command)
    return redirect(reverse("stations:detail", args=[station.pk]) + "#command-history")


def _cpo_form(user, station: Station) -> StationCpoForm | None:
    cpos = _cpo_choices(user, station)
    return StationCpoForm(cpos=cpos) if cpos is not None else None


def _command_message(
    request: HttpRequest, station: Station, form: CommandForm, command: Command
) -> None:
    name = form.action_name
    if command.status == Command.Status.OFFLINE:
        messages.error(request, f"{station.cbid} is offline: {name} was not sent.")
    elif command.status == Command.Status.ERROR:
        messages.error(request, f"{name} was not sent: {command.error}")
    else:
        messages.success(
            request, f"{name} sent to {station.cbid}. The charger's answer appears below."
        )


@login_required
def station_settings(request: HttpRequest, pk: int) -> HttpResponse:
    """Station settings: admins and technicians edit, viewers read (their POST is a 403)."""
    station = station_get_for_user(
        user=request.user, pk=pk, write=request.method == "POST", select_related=["cpo"]
    )
    can_edit = user_may_command(user=request.user, station=station)
    form = StationSettingsForm(
        request.POST if request.method == "POST" else None,
        station=station,
        connectors=station.connectors.all(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            station_settings_update(station=station, user=request.user, data=form.settings_data())
        except SettingsError as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, f"Settings of {station.cbid} saved.")
            return redirect("stations:detail", pk=station.pk)
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "stations/station_settings.html",
        {
            "station": station,
            "form": form,
            "can_edit": can_edit,
            "visibility_missing": visibility_missing(station),
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
@require_GET
def station_log_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Station log: the station's OCPP messages, newest first, paginated.

    A fixed number of queries: the station, the count and one page of messages.
    """
    station = station_get_for_user(user=request.user, pk=pk)
    window = request.GET.get("since", LOG_DEFAULT_WINDOW)
    if window not in LOG_WINDOWS:
        window = LOG_DEFAULT_WINDOW
    hide_noise = request.GET.get("quiet") == "1"
    log = station_log(
        station=station, since=timezone.now() - LOG_WINDOWS[window], hide_noise=hide_noise
    )
    page = Paginator(log, LOG_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {
            "message": message,
            "type": MESSAGE_TYPES.get(message.message_type, "unparsed"),
            "payload": message_payload_text(message),
        }
        for message in page.object_list
    ]
    filters = {
        "since": window if window != LOG_DEFAULT_WINDOW else "",
        "quiet": "1" if hide_noise else "",
    }
    return render(
        request,
        "stations/station_log.html",
        {
            "station": station,
            "page": page,
            "rows": rows,
            "window": window,
            "windows": [("1h", "Last hour"), ("24h", "Last 24 hours"), ("7d", "Last 7 days")],
            "hide_noise": hide_noise,
            "page_query": urlencode({k: v for k, v in filters.items() if v}),
            "directions": dict(OcppMessage.Direction.choices),
        },
    )


@login_required
@require_GET
def transaction_signed(request: HttpRequest, pk: int, transaction_pk: int) -> HttpResponse:
    """A session's signed meter values, verbatim: the evidence a billing dispute or a
    calibration-law check needs (kept as long as the session)."""
    station = station_get_for_user(user=request.user, pk=pk)
    tx = station.transactions.select_related("connector").filter(pk=transaction_pk).first()
    if tx is None:
        raise Http404("No such session at this station.")
    return render(
        request,
        "stations/transaction_signed.html",
        {
            "station": station,
            "transaction": tx,
            "signed_values": transaction_signed_values(transaction_id=tx.pk),
        },
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
