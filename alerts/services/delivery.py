"""Sending the outbox: e-mail (Django's backend) and webhooks (signed JSON over HTTPS).

The worker calls `deliveries_send` outside any request. Each delivery's outcome is saved as
soon as it is known: a delivery is `sent` only after the mail server or the endpoint (2xx)
took it; a failure is retried with exponential back-off (`ALERTS_RETRY_BASE` doubling up to
`ALERTS_RETRY_MAX` seconds), for as long as it takes: nothing is dropped while an endpoint
is down. Receivers de-duplicate on the `X-Virta-Delivery` header (a crash between sending
and saving can repeat one delivery; nothing else does).

Webhook requests: `POST`, `Content-Type: application/json`, the notification's JSON, and
`X-Signature: sha256=<hex HMAC-SHA256 of the body with the webhook's secret>`. Redirects are
not followed (a 3xx is a failure); only `https://` URLs unless `ALERTS_WEBHOOK_ALLOW_HTTP`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from alerts.models import Delivery, Webhook

logger = logging.getLogger(__name__)

USER_AGENT = "Virta-CSMS-Alerts/1"


class DeliveryFailed(Exception):
    pass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError for the 3xx


_opener = urllib.request.build_opener(_NoRedirects)


def webhook_signature(*, secret: str, body: bytes) -> str:
    """The X-Signature header value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_url_allowed(url: str) -> bool:
    scheme = url.split(":", 1)[0].lower()
    return scheme == "https" or (scheme == "http" and settings.ALERTS_WEBHOOK_ALLOW_HTTP)


def webhook_post(*, url: str, secret: str, payload: dict, delivery_id: int) -> None:
    """POST the JSON; raises `DeliveryFailed` unless the endpoint answered 2xx in time."""
    if not webhook_url_allowed(url):
        raise DeliveryFailed("only https:// webhook URLs are allowed")
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Signature": webhook_signature(secret=secret, body=body),
            "X-Virta-Delivery": str(delivery_id),
        },
    )
    try:
        with _opener.open(request, timeout=settings.ALERTS_WEBHOOK_TIMEOUT) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryFailed(f"{type(exc).__name__}: {reason}") from exc
    if not 200 <= status < 300:
        raise DeliveryFailed(f"HTTP {status}")


def email_send(*, address: str, subject: str, body: str) -> None:
    try:
        EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [address]).send()
    except Exception as exc:  # SMTP errors, refused connections, timeouts
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the `attempts`-th failure."""
    seconds = settings.ALERTS_RETRY_BASE * 2 ** min(attempts - 1, 30)
    return timedelta(seconds=min(seconds, settings.ALERTS_RETRY_MAX))


@dataclass
class SendResult:
    sent: int = 0
    failed: int = 0
    postponed: int = 0


def _attempt(delivery: Delivery) -> None:
    notification = delivery.notification
    if delivery.webhook_id is not None:
        webhook_post(
            url=delivery.webhook.url,
            secret=delivery.webhook.secret,
            payload=notification.payload or {},
            delivery_id=delivery.pk,
        )
    else:
        email_send(address=delivery.email, subject=notification.subject, body=notification.body)


def _failed(delivery: Delivery, error: str, now: datetime) -> None:
    delivery.attempts += 1
    delivery.last_error = error[:500]
    delivery.next_attempt_at = now + retry_delay(delivery.attempts)
    delivery.save(update_fields=["attempts", "last_error", "next_attempt_at"])


def deliveries_send(*, now: datetime | None = None, limit: int = 200) -> SendResult:
    """Try the deliveries that are due; save each outcome at once."""
    now = now or timezone.now()
    result = SendResult()
    due = list(
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now)
        .select_related("notification", "webhook")
        .order_by("next_attempt_at", "id")[:limit]
    )
    down: dict[int, str] = {}  # webhooks that failed in this pass: not tried again now
    for delivery in due:
        webhook: Webhook | None = delivery.webhook
        if webhook is not None and webhook.pk in down:
            _failed(delivery, down[webhook.pk], now)
            result.postponed += 1
            continue
        try:
            _attempt(delivery)
        except DeliveryFailed as exc:
            error = str(exc)
            logger.warning("Alert delivery %s failed: %s", delivery.pk, error)
            _failed(delivery, error, now)
            result.failed += 1
            if webhook is not None:
                down[webhook.pk] = error
                Webhook.objects.filter(pk=webhook.pk, failing_since__isnull=True).update(
                    failing_since=now
                )
                Webhook.objects.filter(pk=webhook.pk).update(last_error=error[:500])
            continue
        delivery.state, delivery.sent_at = Delivery.State.SENT, timezone.now()
        delivery.attempts += 1
        delivery.last_error = ""
        delivery.save(update_fields=["state", "sent_at", "attempts", "last_error"])
        result.sent += 1
        if webhook is not None:
            Webhook.objects.filter(pk=webhook.pk).update(
                last_success_at=delivery.sent_at, failing_since=None, last_error=""
            )
    return result
