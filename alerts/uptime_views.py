"""The Uptime report: per connector and month (table, CSV, a chart per station), and
planned maintenance, which uptime excludes. Stations of the user's CPOs only; planning
maintenance needs an admin or technician of the station's CPO (a viewer gets 403)."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from alerts.models import ConnectorState, PlannedMaintenance
from alerts.services.uptime import Uptime, maintenance_plan, uptime_report
from cpo.models import WRITE_ROLES, Cpo
from stations.models import Connector, Station

CHART_WIDTH, CHART_HEIGHT = 300, 60


def month_window(text: str) -> tuple[datetime, datetime]:
    """[first day, first day of the next month) in UTC for "YYYY-MM" (this month if bad)."""
    try:
        start = datetime.strptime(text, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        now = timezone.now()
        start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


class MaintenanceForm(forms.Form):
    station = forms.ModelChoiceField(queryset=Station.objects.none(), label=gettext_lazy("Station"))
    connector_id = forms.IntegerField(
        label=gettext_lazy("Connector (empty: the whole station)"), required=False, min_value=1
    )
    starts_at = forms.DateTimeField(label=gettext_lazy("Starts (UTC)"))
    ends_at = forms.DateTimeField(label=gettext_lazy("Ends (UTC)"))
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["station"].queryset = Station.objects.filter(
            cpo__in=Cpo.objects.for_user(user, roles=WRITE_ROLES)
        ).order_by("cbid")

    def clean(self):
        data = super().clean()
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            raise forms.ValidationError(_("The end must be after the start."))
        station, number = data.get("station"), data.get("connector_id")
        if station and number:
            data["connector"] = Connector.objects.filter(
                station=station, connector_id=number
            ).first()
            if data["connector"] is None:
                raise forms.ValidationError(_("The station has no such connector."))
        return data


def _percent(uptime: Uptime) -> str:
    value = uptime.percent
    return "" if value is None else f"{value:.2f}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f}"


def _chart(days: list[tuple[datetime, list[Uptime]]]) -> list[dict]:
    """Bars of a station's daily uptime (its connectors added up), for an inline SVG."""
    width = CHART_WIDTH / max(1, len(days))
    bars = []
    for index, (day, uptimes) in enumerate(days):
        up = sum(u.up for u in uptimes)
        down = sum(u.down for u in uptimes)
        percent = 100.0 * up / (up + down) if up + down else None
        height = 0 if percent is None else CHART_HEIGHT * percent / 100
        bars.append(
            {
                "x": round(index * width, 2),
                "y": round(CHART_HEIGHT - height, 2),
                "width": round(max(1.0, width - 1), 2),
                "height": round(height, 2),
                "label": f"{day:%Y-%m-%d}: " + ("—" if percent is None else f"{percent:.1f} %"),
                "low": percent is not None and percent < 97,
            }
        )
    return bars


@login_required
@require_GET
def uptime_page(request: HttpRequest) -> HttpResponse:
    start, end = month_window(request.GET.get("month", ""))
    now = timezone.now()
    stations = list(
        Station.objects.filter(cpo__in=Cpo.objects.for_user(request.user))
        .select_related("cpo")
        .order_by("cbid")
    )
    connectors = list(
        Connector.objects.filter(station__in=stations, connector_id__gt=0)
        .select_related("station")
        .order_by("station__cbid", "evse_id", "connector_id")
    )
    report = uptime_report(connectors=connectors, start=start, end=end, now=now)
    if request.GET.get("format") == "csv":
        return _csv(report, start)
    per_station: dict[int, list] = defaultdict(list)
    for row in report:
        per_station[row.connector.station_id].append(row)
    charts = []
    for station in stations:
        rows = per_station.get(station.pk, [])
        if not rows:
            continue
        days = [(day, [r.days[i][1] for r in rows]) for i, (day, _) in enumerate(rows[0].days)]
        charts.append({"station": station, "bars": _chart(days)})
    context = {
        "month": f"{start:%Y-%m}",
        "rows": [
            {
                "row": row,
                "percent": _percent(row.month),
                "hours": {
                    state: _hours(row.month.seconds[state]) for state in ConnectorState.values
                },
                "unknown": _hours(row.month.unknown),
                "maintenance": _hours(row.month.maintenance),
            }
            for row in report
        ],
        "states": ConnectorState.choices,
        "charts": charts,
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "maintenance": PlannedMaintenance.objects.filter(
            station__in=stations, starts_at__lt=end, ends_at__gt=start
        ).select_related("station", "connector"),
        "form": MaintenanceForm(user=request.user),
        "may_plan": Cpo.objects.for_user(request.user, roles=WRITE_ROLES).exists(),
    }
    return render(request, "alerts/uptime.html", context)


def _csv(report, start: datetime) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="uptime-{start:%Y-%m}.csv"'
    writer = csv.writer(response)
    states = ConnectorState.values
    writer.writerow(
        ["month", "cbid", "station", "evse", "connector", "uptime_percent"]
        + [f"{state}_hours" for state in states]
        + ["maintenance_hours"]
    )
    for row in report:
        connector = row.connector
        name = connector.station.name
        writer.writerow(
            [
                f"{start:%Y-%m}",
                connector.station.cbid,
                "'" + name if name[:1] in ("=", "+", "-", "@") else name,
                connector.evse_id or "",
                connector.connector_id,
                _percent(row.month),
            ]
            + [
                _hours(row.month.unknown if s == "unknown" else row.month.seconds[s])
                for s in states
            ]
            + [_hours(row.month.maintenance)]
        )
    return response


@login_required
@require_POST
def maintenance_add(request: HttpRequest) -> HttpResponse:
    form = MaintenanceForm(request.POST, user=request.user)
    if not form.is_valid():
        if (
            "station" in form.errors
            and not Cpo.objects.for_user(request.user, roles=WRITE_ROLES).exists()
        ):
            raise PermissionDenied(_("Viewers cannot plan maintenance."))
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect("alerts:uptime")
    data = form.cleaned_data
    station = get_object_or_404(Station, pk=data["station"].pk)
    maintenance_plan(
        cpo=station.cpo,
        station=station,
        connector=data.get("connector"),
        starts_at=data["starts_at"],
        ends_at=data["ends_at"],
        reason=data["reason"],
        by=request.user,
    )
    messages.success(request, _("Planned maintenance recorded."))
    return redirect("alerts:uptime")
