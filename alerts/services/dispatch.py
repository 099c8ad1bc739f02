"""A notification's text (e-mail) and JSON (webhooks), and its outbox rows.

A notification that stopped collecting (its grouping window passed) is rendered once and
gets one `Delivery` per recipient e-mail address and per enabled webhook, in the same
transaction: from then on the outbox holds it until each delivery succeeds.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from alerts.models import Alert, Delivery, EmailRecipient, Notification, RuleKind, Webhook
from ocpp_spec.times import utc_iso

# A grouped message lists this many alerts in full (the count is always exact).
MAX_LISTED = 1000
SUBJECT_PREFIX = "[Virta]"


def _station_label(alert: Alert) -> str:
    station = alert.station
    return f"{station.name} ({station.cbid})" if station.name else station.cbid


def _alert_json(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "state": alert.state,
        "station": {"cbid": alert.station.cbid, "name": alert.station.name},
        "key": alert.key,
        "detail": alert.detail,
        "error_code": alert.error_code,
        "first_seen_at": utc_iso(alert.first_seen_at),
        "opened_at": utc_iso(alert.opened_at) if alert.opened_at else None,
        "resolved_at": utc_iso(alert.resolved_at) if alert.resolved_at else None,
    }


def notification_render(notification: Notification) -> None:
    """Fill in the subject, the plain-text body and the JSON payload."""
    alerts = list(notification.alerts.select_related("station").order_by("station__cbid", "pk"))
    count = len(alerts)
    what = RuleKind(notification.kind).label
    change = Notification.Change(notification.change).label
    cpo = notification.cpo.name
    if count == 1:
        subject = f"{SUBJECT_PREFIX} {cpo}: {what} {change} – {_station_label(alerts[0])}"
    else:
        subject = f"{SUBJECT_PREFIX} {cpo}: {what} {change} at {count} stations"
    lines = [f"{cpo}: {what} {change} ({count} alert{'s' if count != 1 else ''}).", ""]
    for alert in alerts[:MAX_LISTED]:
        lines.append(f"- {_station_label(alert)}: {alert.detail}")
    if count > MAX_LISTED:
        lines.append(f"- … and {count - MAX_LISTED} more (see the Alerts page)")
    notification.subject = subject[:200]
    notification.body = "\n".join(lines) + "\n"
    notification.payload = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"virta-notification-{notification.pk}")),
        "cpo": cpo,
        "kind": notification.kind,
        "change": notification.change,
        "count": count,
        "created_at": utc_iso(notification.created_at),
        "alerts": [_alert_json(alert) for alert in alerts[:MAX_LISTED]],
    }


def alert_email_addresses(*, cpo_id: int) -> list[str]:
    """E-mail addresses of the CPO's chosen recipients who are still its members."""
    users = get_user_model().objects.filter(
        pk__in=EmailRecipient.objects.filter(cpo_id=cpo_id).values("user_id"),
        memberships__cpo_id=cpo_id,
        is_active=True,
    )
    return sorted({email for email in users.values_list("email", flat=True) if email})


def notifications_dispatch(*, now: datetime | None = None) -> int:
    """Render the notifications whose window passed and write their deliveries."""
    now = now or timezone.now()
    done = 0
    with transaction.atomic():
        due = (
            Notification.objects.select_for_update(skip_locked=True)
            .filter(dispatched_at__isnull=True, send_after__lte=now)
            .select_related("cpo")
            .order_by("send_after")
        )
        for notification in due:
            notification_render(notification)
            notification.dispatched_at = now
            notification.save(update_fields=["subject", "body", "payload", "dispatched_at"])
            rows = [
                Delivery(notification=notification, email=email, next_attempt_at=now)
                for email in alert_email_addresses(cpo_id=notification.cpo_id)
            ]
            rows += [
                Delivery(notification=notification, webhook=webhook, next_attempt_at=now)
                for webhook in Webhook.objects.filter(cpo_id=notification.cpo_id, enabled=True)
            ]
            Delivery.objects.bulk_create(rows)
            done += 1
    return done
