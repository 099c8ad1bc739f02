"""The Alerts page and the alert settings: the four ways (alice, anonymous, carol, bob)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from alerts.models import Alert, AlertRule, EmailRecipient, RuleKind, Webhook
from alerts.services.alert_list import alerts_needing_attention, alerts_open_for_cpo
from tests.factories import PASSWORD, make_station

pytestmark = pytest.mark.django_db


def login(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def alert(cpo_a):
    station = make_station("CP-A1", cpo=cpo_a, name="Harbour")
    return Alert.objects.create(
        cpo=cpo_a,
        station=station,
        kind=RuleKind.OFFLINE,
        state=Alert.State.OPEN,
        detail="Not connected",
        opened_at=timezone.now() - timedelta(minutes=5),
    )


def test_alice_sees_and_acknowledges(client, alice, alert):
    login(client, alice)
    page = client.get(reverse("alerts:list"))
    assert page.status_code == 200
    assert b"Harbour" in page.content and b"Acknowledge" in page.content
    response = client.post(reverse("alerts:acknowledge", args=[alert.pk]))
    assert response.status_code == 302
    alert.refresh_from_db()
    assert (alert.state, alert.acknowledged_by) == ("acknowledged", alice)
    # Still needs attention until the condition clears.
    assert alert in alerts_open_for_cpo(cpo=alert.cpo)


def test_history_lists_resolved_alerts(client, alice, alert):
    Alert.objects.filter(pk=alert.pk).update(state="resolved", resolved_at=timezone.now())
    login(client, alice)
    assert b"Harbour" not in client.get(reverse("alerts:list")).content
    assert b"Harbour" in client.get(reverse("alerts:list"), {"state": "all"}).content


def test_pending_alerts_are_not_shown(client, alice, alert):
    Alert.objects.filter(pk=alert.pk).update(state="pending")
    login(client, alice)
    assert b"Harbour" not in client.get(reverse("alerts:list"), {"state": "all"}).content


@pytest.mark.parametrize("name", ["alerts:list", "alerts:settings_index"])
def test_login_required(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_carol_sees_nothing_of_cpo_a(client, carol, alert):
    login(client, carol)
    assert b"Harbour" not in client.get(reverse("alerts:list")).content
    assert client.post(reverse("alerts:acknowledge", args=[alert.pk])).status_code == 404
    assert client.get(reverse("alerts:settings", args=[alert.cpo_id])).status_code == 404


def test_bob_reads_but_may_not_acknowledge_or_configure(client, bob, alert):
    login(client, bob)
    page = client.get(reverse("alerts:list"))
    assert b"Harbour" in page.content and b"Acknowledge" not in page.content
    assert client.post(reverse("alerts:acknowledge", args=[alert.pk])).status_code == 403
    assert client.get(reverse("alerts:settings", args=[alert.cpo_id])).status_code == 403
    assert client.post(reverse("alerts:rules", args=[alert.cpo_id]), {}).status_code == 403


def test_needs_attention_for_the_home_page(alice, carol, alert):
    assert alerts_needing_attention(user=alice) == [alert]
    assert alerts_needing_attention(user=carol) == []


def test_alice_changes_rules_recipients_and_webhooks(client, alice, bob, cpo_a):
    login(client, alice)
    url = reverse("alerts:settings", args=[cpo_a.pk])
    assert client.get(reverse("alerts:settings_index"))["Location"] == url
    page = client.get(url)
    assert page.status_code == 200 and b"Station offline" in page.content
    data = {}
    for kind in RuleKind.values:
        data[f"{kind}-enabled"] = "on"
        data[f"{kind}-delay_seconds"] = "0"
    data["offline-delay_seconds"] = "600"
    data["faulted-error_codes"] = "GroundFailure, OverCurrentFailure"
    assert client.post(reverse("alerts:rules", args=[cpo_a.pk]), data).status_code == 302
    offline = AlertRule.objects.get(cpo=cpo_a, kind="offline")
    assert (offline.enabled, offline.delay_seconds) == (True, 600)
    faulted = AlertRule.objects.get(cpo=cpo_a, kind="faulted")
    assert faulted.error_code_set() == {"GroundFailure", "OverCurrentFailure"}

    client.post(reverse("alerts:recipients", args=[cpo_a.pk]), {"user": [bob.pk]})
    assert list(EmailRecipient.objects.values_list("user", flat=True)) == [bob.pk]

    bad = client.post(reverse("alerts:webhook_add", args=[cpo_a.pk]), {"url": "http://x.example/"})
    assert bad.status_code == 400
    client.post(reverse("alerts:webhook_add", args=[cpo_a.pk]), {"url": "https://x.example/h"})
    webhook = Webhook.objects.get()
    assert webhook.url == "https://x.example/h" and len(webhook.secret) >= 40
    assert webhook.secret.encode() in client.get(url).content
    client.post(reverse("alerts:webhook_delete", args=[cpo_a.pk, webhook.pk]))
    assert Webhook.objects.count() == 0


def test_a_failing_webhook_is_shown(client, alice, cpo_a):
    Webhook.objects.create(
        cpo=cpo_a,
        url="https://down.example/h",
        failing_since=timezone.now(),
        last_error="HTTP 503",
    )
    login(client, alice)
    page = client.get(reverse("alerts:settings", args=[cpo_a.pk]))
    assert b"Failing" in page.content and b"HTTP 503" in page.content


def test_nav_has_an_alerts_link(client, alice):
    login(client, alice)
    assert reverse("alerts:list").encode() in client.get(reverse("stations:list")).content
