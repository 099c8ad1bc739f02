"""Notifications: rendering, e-mail through locmem, signed webhooks retried from the outbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from alerts.models import Delivery, EmailRecipient, Notification, Webhook
from alerts.services.delivery import deliveries_send, webhook_signature
from alerts.services.dispatch import notifications_dispatch
from alerts.services.evaluate import alerts_evaluate
from tests.factories import make_station

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) + timedelta(days=1)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


class Endpoint:
    """A local HTTP server that answers 500 to the first `failures` requests, then 204."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict, bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint.requests.append((dict(self.headers), body))
                failing = len(endpoint.requests) <= endpoint.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.ALERTS_WEBHOOK_ALLOW_HTTP = True
    settings.ALERTS_GROUP_WINDOW = 30
    settings.ALERTS_RETRY_BASE = 30
    settings.ALERTS_RETRY_MAX = 3600
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "alerts@virta.example"


def power_cut(cpo, count: int) -> None:
    for i in range(count):
        make_station(f"CP-{i}", cpo=cpo, name="", connected=False, disconnected_at=at(0))


def test_email_to_chosen_members_with_the_right_text(cpo_a, alice, bob):
    EmailRecipient.objects.create(cpo=cpo_a, user=alice)
    make_station("CP-1", cpo=cpo_a, name="Main street", connected=False, disconnected_at=at(0))
    alerts_evaluate(now=at(300))
    assert notifications_dispatch(now=at(310)) == 0  # still collecting
    assert notifications_dispatch(now=at(330)) == 1
    result = deliveries_send(now=at(331))
    assert result.sent == 1
    [message] = mail.outbox
    assert message.to == ["alice@example.com"]  # bob was not chosen
    assert message.from_email == "alerts@virta.example"
    assert message.subject == "[Virta] CPO A: Station offline opened – Main street (CP-1)"
    assert message.body == (
        "CPO A: Station offline opened (1 alert).\n\n- Main street (CP-1): Not connected\n"
    )
    # Sent is sent: another round sends nothing.
    deliveries_send(now=at(10_000))
    assert len(mail.outbox) == 1


def test_grouped_email_names_the_count(cpo_a, alice):
    EmailRecipient.objects.create(cpo=cpo_a, user=alice)
    power_cut(cpo_a, 3)
    alerts_evaluate(now=at(300))
    notifications_dispatch(now=at(330))
    deliveries_send(now=at(331))
    [message] = mail.outbox
    assert message.subject == "[Virta] CPO A: Station offline opened at 3 stations"
    assert "- CP-0: Not connected\n- CP-1: Not connected\n- CP-2: Not connected\n" in message.body


def test_a_member_who_left_gets_nothing(cpo_a, alice):
    EmailRecipient.objects.create(cpo=cpo_a, user=alice)
    alice.memberships.all().delete()
    power_cut(cpo_a, 1)
    alerts_evaluate(now=at(300))
    notifications_dispatch(now=at(330))
    assert Delivery.objects.count() == 0


def test_webhook_signed_retried_with_backoff_and_delivered_once(cpo_a):
    with Endpoint(failures=3) as endpoint:
        webhook = Webhook.objects.create(cpo=cpo_a, url=endpoint.url)
        # Two notifications: the opening (3 stations grouped) and, later, the resolution.
        power_cut(cpo_a, 3)
        alerts_evaluate(now=at(300))
        notifications_dispatch(now=at(330))
        assert deliveries_send(now=at(331)).failed == 1
        webhook.refresh_from_db()
        assert webhook.failing_since == at(331)
        assert webhook.last_error == "HTTP 500"
        delivery = Delivery.objects.get()
        assert (delivery.attempts, delivery.next_attempt_at) == (1, at(331 + 30))
        # Not due yet: not tried.
        assert deliveries_send(now=at(340)).failed == 0
        assert deliveries_send(now=at(361)).failed == 1
        delivery.refresh_from_db()
        assert delivery.next_attempt_at == at(361 + 60)  # doubled
        # Meanwhile the stations come back: a second notification joins the outbox.
        from stations.models import Station

        Station.objects.update(connected=True)
        alerts_evaluate(now=at(400))
        notifications_dispatch(now=at(430))
        # The endpoint fails once more, then recovers.
        result = deliveries_send(now=at(431))
        assert (result.failed, result.postponed) == (1, 1)  # the second waits with the first
        for moment in range(431, 5000, 60):
            deliveries_send(now=at(moment))
        assert Delivery.objects.filter(state="sent").count() == 2
        webhook.refresh_from_db()
        assert webhook.failing_since is None and webhook.last_error == ""

        delivered = [(h, b) for h, b in endpoint.requests[endpoint.failures :]]
        assert len(delivered) == 2
        ids = set()
        for headers, body in delivered:
            expected = (
                "sha256=" + hmac.new(webhook.secret.encode(), body, hashlib.sha256).hexdigest()
            )
            assert headers["X-Signature"] == expected
            assert headers["Content-Type"] == "application/json"
            payload = json.loads(body)
            ids.add(payload["id"])
        assert len(ids) == 2  # each notification once
        changes = sorted(json.loads(b)["change"] for _, b in delivered)
        assert changes == ["opened", "resolved"]
        opened = next(json.loads(b) for _, b in delivered if json.loads(b)["change"] == "opened")
        assert opened["count"] == 3
        assert {a["station"]["cbid"] for a in opened["alerts"]} == {"CP-0", "CP-1", "CP-2"}


def test_signature_helper_matches_hmac_sha256():
    body = b'{"a":1}'
    assert webhook_signature(secret="s3cret", body=body) == (
        "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    )


def test_plain_http_is_refused_in_production(cpo_a, settings):
    settings.ALERTS_WEBHOOK_ALLOW_HTTP = False
    Webhook.objects.create(cpo=cpo_a, url="http://127.0.0.1:9/hook")
    power_cut(cpo_a, 1)
    alerts_evaluate(now=at(300))
    notifications_dispatch(now=at(330))
    deliveries_send(now=at(331))
    delivery = Delivery.objects.get()
    assert delivery.state == "pending"
    assert "only https://" in delivery.last_error


def test_an_unreachable_endpoint_keeps_everything(cpo_a, settings):
    settings.ALERTS_WEBHOOK_TIMEOUT = 1
    Webhook.objects.create(cpo=cpo_a, url="http://127.0.0.1:9/hook")
    power_cut(cpo_a, 1)
    alerts_evaluate(now=at(300))
    notifications_dispatch(now=at(330))
    for moment in range(331, 100_000, 3600):
        deliveries_send(now=at(moment))
    delivery = Delivery.objects.get()
    assert delivery.state == "pending" and delivery.attempts > 20
    assert Notification.objects.get().dispatched_at == at(330)
