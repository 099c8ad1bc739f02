"""Selectors of alerts (the Alerts page, the home page's "needs attention") and acknowledging."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from alerts.models import Alert
from cpo.models import WRITE_ROLES, Cpo

RAISED = (Alert.State.OPEN, Alert.State.ACKNOWLEDGED)


def alerts_for_user(*, user) -> QuerySet[Alert]:
    """Alerts people see (never the pending ones) of the CPOs the user belongs to."""
    return (
        Alert.objects.filter(cpo__in=Cpo.objects.for_user(user))
        .exclude(state=Alert.State.PENDING)
        .select_related("station", "cpo", "acknowledged_by")
    )


def alerts_open_for_cpo(*, cpo: Cpo) -> QuerySet[Alert]:
    """The CPO's alerts that need attention: open or acknowledged, newest first."""
    return (
        Alert.objects.filter(cpo=cpo, state__in=RAISED)
        .select_related("station")
        .order_by("-opened_at", "-id")
    )


def alerts_needing_attention(*, user, limit: int = 20) -> list[Alert]:
    """Open alerts (not yet acknowledged first) of the user's CPOs, for the home page."""
    return list(
        alerts_for_user(user=user)
        .filter(state__in=RAISED)
        .order_by("state", "-opened_at", "-id")[:limit]
    )


def alerts_open_counts() -> dict[tuple[str, str], int]:
    """{(kind, state): count} of every CPO's open and acknowledged alerts (for /metrics)."""
    rows = (
        Alert.objects.filter(state__in=RAISED).values_list("kind", "state").annotate(n=Count("pk"))
    )
    return {(kind, state): n for kind, state, n in rows}


def alert_acknowledge(*, alert: Alert, user) -> Alert:
    """A person has seen the alert. Needs a role that may change things (not a viewer)."""
    if not Cpo.objects.for_user(user, roles=WRITE_ROLES).filter(pk=alert.cpo_id).exists():
        raise PermissionDenied("Viewers cannot acknowledge alerts.")
    with transaction.atomic():
        updated = Alert.objects.filter(pk=alert.pk, state=Alert.State.OPEN).update(
            state=Alert.State.ACKNOWLEDGED, acknowledged_at=timezone.now(), acknowledged_by=user
        )
        if updated and alert.is_event:
            # An event has no condition to clear: seen is done.
            Alert.objects.filter(pk=alert.pk).update(
                state=Alert.State.RESOLVED, resolved_at=timezone.now()
            )
    alert.refresh_from_db()
    return alert
