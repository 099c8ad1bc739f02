"""/metrics: off by default, protected by a token and/or an address allow-list."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.utils import timezone

from alerts.models import Alert, RuleKind
from tests.factories import make_cpo, make_station
from virta.asgi import application


async def scrape(headers=(), client=("127.0.0.1", 5000)) -> tuple[int, str]:
    communicator = HttpCommunicator(application, "GET", "/metrics", headers=list(headers))
    communicator.scope["client"] = client
    response = await communicator.get_response(timeout=10)
    return response["status"], response["body"].decode()


@pytest.mark.asyncio
async def test_off_by_default(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "", []
    status, _ = await scrape()
    assert status == 404


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_bearer_token(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "t0ken", []
    assert (await scrape())[0] == 403
    assert (await scrape([(b"authorization", b"Bearer wrong")]))[0] == 403
    status, body = await scrape([(b"authorization", b"Bearer t0ken")])
    assert status == 200
    assert "# TYPE ocpp_frames counter" in body or "# TYPE ocpp_frames_total counter" in body
    assert "ocpp_call_duration_seconds" in body


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_address_allow_list(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "", ["10.0.0.0/8", "::1"]
    assert (await scrape(client=("192.0.2.1", 1)))[0] == 403
    assert (await scrape(client=("10.1.2.3", 1)))[0] == 200
    assert (await scrape(client=("::1", 1)))[0] == 200


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_open_alerts_are_counted(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "t", []

    def alerts():
        cpo = make_cpo("CPO M")
        for i, state in enumerate(["open", "open", "acknowledged", "resolved", "pending"]):
            Alert.objects.create(
                cpo=cpo,
                station=make_station(f"M-{i}", cpo=cpo),
                kind=RuleKind.OFFLINE,
                state=state,
                opened_at=timezone.now(),
            )

    await sync_to_async(alerts)()
    _, body = await scrape([(b"authorization", b"Bearer t")])
    assert 'virta_alerts_open{kind="offline",state="open"} 2.0' in body
    assert 'virta_alerts_open{kind="offline",state="acknowledged"} 1.0' in body
    assert "resolved" not in body.split("virta_alerts_open")[-1]
