"""The panel's Home page and Sessions: the list (keyset pages), a session's page (chart,
samples, its OCPP messages) and the CSV export.

Everything starts from `Station.objects.for_user` (another CPO's session is a 404, as
another CPO's station), narrowed to the current CPO (`request.current_cpo`, chosen in
the header). Times are shown in that CPO's time zone (`cpo.current`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from stations.forms import SessionFilterForm
from stations.models import MeterValue, Station, Transaction
from stations.services.home import (
    ATTENTION_CHECKS,
    StationState,
    needs_attention,
    session_totals,
    station_counts,
)
from stations.services.session_list import (
    CSV_COLUMNS,
    SessionFilters,
    SessionState,
    session_page,
    session_state_of,
    sessions_csv_chunk,
    sessions_for,
)
from stations.services.station_log import message_payload_text, session_log
from stations.services.transaction_timeline import transaction_timeline
from stations.session_chart import session_chart_svg

# A session's page shows this many of its samples and OCPP messages.
SAMPLES_SHOWN = 500
MESSAGES_SHOWN = 300


def _scoped_stations(request: HttpRequest):
    stations = Station.objects.for_user(request.user)
    current = getattr(request, "current_cpo", None)
    if current is not None:
        stations = stations.filter(cpo_id=current.pk)
    return stations


def _cpo_id(request: HttpRequest) -> int | None:
    current = getattr(request, "current_cpo", None)
    return current.pk if current is not None else None


def _filters(request: HttpRequest) -> tuple[SessionFilterForm, SessionFilters]:
    form = SessionFilterForm(
        request.GET or None, stations=_scoped_stations(request), states=SessionState.choices
    )
    filters = SessionFilters(cpo_id=_cpo_id(request), zone=timezone.get_current_timezone())
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = SessionFilters(
            cpo_id=filters.cpo_id,
            zone=filters.zone,
            station_id=data["station"].pk if data["station"] else None,
            since=data["since"],
            until=data["until"],
            tag=data["tag"].strip(),
            state=data["state"],
        )
    return form, filters


def _filter_query(request: HttpRequest) -> str:
    keys = ("since", "until", "station", "tag", "state")
    return urlencode({k: request.GET[k] for k in keys if request.GET.get(k)})


def _station_options(form: SessionFilterForm, chosen: int | None) -> str:
    """The station filter's <option>s, built here: the select widget renders each option
    through a template, too slow for a CPO's thousands of stations."""
    stations = form.fields["station"].queryset.values_list("pk", "cbid", "name")
    return format_html_join(
        "",
        '<option value="{}"{}>{}</option>',
        (
            (
                pk,
                mark_safe(" selected") if pk == chosen else "",
                f"{cbid} · {name}" if name else cbid,
            )
            for pk, cbid, name in stations
        ),
    )


@login_required
@require_GET
def session_list(request: HttpRequest) -> HttpResponse:
    """Sessions: the current CPO's sessions, newest first, filtered, paged by keyset.

    A fixed number of queries per page: the page (stations, connectors and the peak
    power joined or sub-selected), the energy so far of its running sessions.
    """
    form, filters = _filters(request)
    page = session_page(
        sessions_for(user=request.user, filters=filters), cursor=request.GET.get("after", "")
    )
    query = _filter_query(request)
    return render(
        request,
        "stations/session_list.html",
        {
            "form": form,
            "station_options": _station_options(form, filters.station_id),
            "sessions": page.sessions,
            "next_cursor": page.next_cursor,
            "deep": bool(request.GET.get("after")),
            "filter_query": query,
            "filtered": bool(query),
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@login_required
@require_GET
def session_detail(request: HttpRequest, transaction_pk: int) -> HttpResponse:
    """A session: its facts, energy and power over time (SVG), samples and OCPP messages."""
    tx = sessions_for(user=request.user).filter(pk=transaction_pk).first()
    if tx is None:
        raise Http404("No such session.")
    tx.session_state = session_state_of(tx)
    timeline = transaction_timeline(transaction_id=tx.pk)
    samples = list(
        MeterValue.objects.filter(transaction=tx).order_by("timestamp", "id")[: SAMPLES_SHOWN + 1]
    )
    end = tx.stop_time if tx.state == Transaction.State.ENDED else None
    start = tx.start_received_at or tx.start_time or tx.created_at
    messages = list(
        session_log(station=tx.station, start=start, end=tx.stop_received_at or end)[
            : MESSAGES_SHOWN + 1
        ]
    )
    now = timezone.now()
    until = tx.stop_time or (now if tx.state == Transaction.State.ACTIVE else None)
    return render(
        request,
        "stations/session_detail.html",
        {
            "tx": tx,
            "station": tx.station,
            "timeline": timeline,
            "duration": until - tx.start_time if until and tx.start_time else None,
            "chart": session_chart_svg(timeline.samples, meter_start_wh=timeline.meter_start_wh),
            "samples": samples[:SAMPLES_SHOWN],
            "samples_truncated": len(samples) > SAMPLES_SHOWN,
            "log": [(m, message_payload_text(m)) for m in messages[:MESSAGES_SHOWN]],
            "log_truncated": len(messages) > MESSAGES_SHOWN,
        },
    )


@login_required
@require_GET
def session_export(request: HttpRequest) -> HttpResponse:
    """The filtered sessions as CSV (UTF-8 with a BOM for spreadsheets, ISO 8601 times
    with the CPO's offset), streamed in keyset chunks: 10,000 rows are never in memory
    at once. Columns: `CSV_COLUMNS` (README, "Sessions")."""
    form, filters = _filters(request)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filters.", status=400, content_type="text/plain")
    sessions = sessions_for(user=request.user, filters=filters)
    zone = timezone.get_current_timezone()
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        _csv_stream(sessions, zone), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="sessions-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


def _csv_line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row)
    return buffer.getvalue()


async def _csv_stream(sessions, zone) -> AsyncIterator[bytes]:
    """An async iterator: under ASGI Django would first list() a synchronous one, the
    whole file in memory. Each chunk is read on a database thread."""
    yield ("\ufeff" + _csv_line([name for name, _ in CSV_COLUMNS])).encode()
    cursor = ""
    while True:
        rows, cursor = await sync_to_async(sessions_csv_chunk)(sessions, cursor=cursor, zone=zone)
        if rows:
            yield "".join(_csv_line(row) for row in rows).encode()
        if not cursor:
            return


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Home: station counts by state, sessions and energy today and this month, and what
    needs attention, for the current CPO (all the user's CPOs when none is chosen)."""
    stations = _scoped_stations(request)
    local_now = timezone.localtime()
    today = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    attention = needs_attention(stations)
    counts = station_counts(stations)
    return render(
        request,
        "stations/home.html",
        {
            "counts": counts,
            "station_tiles": [(s.value, s.label, counts[s.value]) for s in StationState],
            "totals": session_totals(stations, today=today, month=month),
            "today": today.date().isoformat(),
            "month": month.date().isoformat(),
            "attention": attention,
            "attention_checks": list(ATTENTION_CHECKS),
        },
    )
