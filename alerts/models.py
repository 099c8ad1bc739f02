"""Alerts: rules per CPO, the alerts they raise, and the outbox that tells people.

An alert goes pending (condition seen, waiting out the rule's delay) → open → acknowledged
(by a person) → resolved (by itself, when the condition clears). A pending alert whose
condition clears within the delay is deleted: nothing was raised. Every change people hear
about is a `Notification` (one per CPO, rule and change, grouping the alerts of a short
window); each way of telling (one e-mail address, one webhook) is a `Delivery` row of the
outbox, retried until it is delivered.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cpo.models import Cpo
from stations.models import Connector, Station


class RuleKind(models.TextChoices):
    OFFLINE = "offline", _("Station offline")
    FAULTED = "faulted", _("Connector faulted")
    REBOOT = "reboot", _("Station rebooted unexpectedly")
    BOOT_REJECTED = "boot_rejected", _("Boot rejected")
    SECURITY_EVENT = "security_event", _("Security event")
    FIRMWARE_FAILED = "firmware_failed", _("Firmware update failed")
    LOCAL_LIST = "local_list", _("Local list out of sync")
    BACKEND_STOP = "backend_stop", _("Session stopped by the backend")


class AlertRule(models.Model):
    """One kind of alert for one CPO: on or off, and how long a condition must last."""

    cpo = models.ForeignKey(Cpo, on_delete=models.CASCADE, related_name="alert_rules")
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    enabled = models.BooleanField(default=True)
    # Debounce: a condition that clears within this many seconds raises nothing. For
    # "offline", the minutes a station may be away.
    delay_seconds = models.PositiveIntegerField(default=0)
    # Faulted only: the error codes that raise an alert (comma-separated); empty = any.
    error_codes = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["cpo", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["cpo", "kind"], name="alertrule_cpo_kind_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.cpo}: {self.get_kind_display()}"

    def error_code_set(self) -> frozenset[str]:
        return frozenset(code.strip() for code in self.error_codes.split(",") if code.strip())


class Alert(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    cpo = models.ForeignKey(Cpo, on_delete=models.CASCADE, related_name="alerts")
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="alerts")
    connector = models.ForeignKey(
        Connector, on_delete=models.SET_NULL, null=True, blank=True, related_name="alerts"
    )
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    # What makes this alert one of its kind at the station: "" (offline), the connector
    # ("1/2"), or the event (the message log row) it comes from.
    key = models.CharField(max_length=60, blank=True)
    state = models.CharField(max_length=15, choices=State.choices, default=State.PENDING)
    detail = models.CharField(max_length=500, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    opened_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            # One live alert per condition; history keeps the resolved ones.
            models.UniqueConstraint(
                fields=["station", "kind", "key"],
                condition=~Q(state="resolved"),
                name="alert_one_live_per_condition",
            ),
        ]
        indexes = [
            models.Index(fields=["cpo", "state"], name="alert_cpo_state_idx"),
            models.Index(fields=["cpo", "-opened_at"], name="alert_cpo_opened_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.station_id} ({self.state})"

    @property
    def is_event(self) -> bool:
        return self.key.startswith(EVENT_KEY_PREFIX)


# Alerts raised by one event (a frame, a session) rather than by a lasting condition.
EVENT_KEY_PREFIX = "event:"


class EvaluatorState(models.Model):
    """Where the evaluator stopped reading events (one row)."""

    events_scanned_until = models.DateTimeField(null=True, blank=True)
    # The last time the status history was sampled (a longer gap is "unknown").
    history_recorded_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"events scanned until {self.events_scanned_until}"


class EmailRecipient(models.Model):
    """A member of the CPO who receives its alerts by e-mail."""

    cpo = models.ForeignKey(Cpo, on_delete=models.CASCADE, related_name="alert_recipients")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cpo", "user"], name="emailrecipient_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} for {self.cpo}"


def _webhook_secret() -> str:
    return secrets.token_urlsafe(32)


class Webhook(models.Model):
    """An HTTPS endpoint that receives the CPO's alert notifications as signed JSON."""

    cpo = models.ForeignKey(Cpo, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    # The HMAC-SHA256 key of the X-Signature header.
    secret = models.CharField(max_length=100, default=_webhook_secret)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # Set while the endpoint fails (cleared by the next success), shown in the panel.
    failing_since = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["cpo", "url"]

    def __str__(self) -> str:
        return self.url


class Notification(models.Model):
    """One message about alert changes: one alert, or many of the same rule grouped."""

    class Change(models.TextChoices):
        OPENED = "opened", _("opened")
        RESOLVED = "resolved", _("resolved")

    cpo = models.ForeignKey(Cpo, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=RuleKind.choices)
    change = models.CharField(max_length=10, choices=Change.choices)
    alerts = models.ManyToManyField(Alert, related_name="notifications")
    created_at = models.DateTimeField(default=timezone.now)
    # Alerts of the same CPO, rule and change join it until then (grouping window).
    send_after = models.DateTimeField()
    # Set when its deliveries were written; then nothing joins it any more.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    payload = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["send_after"],
                condition=Q(dispatched_at__isnull=True),
                name="notification_undispatched_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.subject or f"{self.kind} {self.change}"


class Delivery(models.Model):
    """One notification to one e-mail address or one webhook: the durable outbox."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="deliveries"
    )
    webhook = models.ForeignKey(
        Webhook, on_delete=models.CASCADE, null=True, blank=True, related_name="deliveries"
    )
    email = models.EmailField(blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="delivery_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notification} → {self.webhook or self.email} ({self.state})"


class ConnectorState(models.TextChoices):
    """What a connector was doing, for uptime (OCPP statuses folded)."""

    AVAILABLE = "available", _("Available")
    CHARGING = "charging", _("In use")
    FAULTED = "faulted", _("Faulted")
    UNAVAILABLE = "unavailable", _("Unavailable")
    OFFLINE = "offline", _("Offline")
    UNKNOWN = "unknown", _("Unknown")


class StatusPeriod(models.Model):
    """A connector in one state from `started_at` until `ended_at` (open: until now).

    Sampled by the alerts worker each round from the connectors' status and the stations'
    connection (no cost on the chargers' frame path); a gap in sampling is unknown time.
    """

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+")
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=12, choices=ConnectorState.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["connector", "started_at"]
        indexes = [
            models.Index(fields=["station", "started_at"], name="statusperiod_station_idx"),
            models.Index(
                fields=["connector"],
                condition=Q(ended_at__isnull=True),
                name="statusperiod_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connector_id} {self.state} {self.started_at}–{self.ended_at or ''}"


class PlannedMaintenance(models.Model):
    """A period the CPO planned maintenance: excluded from uptime (AFIR)."""

    cpo = models.ForeignKey(Cpo, on_delete=models.CASCADE, related_name="+")
    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="+")
    # Empty: the whole station.
    connector = models.ForeignKey(
        Connector, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="maintenance_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.station_id}: {self.starts_at}–{self.ends_at} {self.reason}"
