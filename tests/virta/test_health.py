"""/healthz and /readyz: answered before Django, no login, no host check, short timeouts."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import HttpCommunicator

from virta import health
from virta.asgi import application


async def get(path: str, method: str = "GET", headers=None) -> tuple[int, dict]:
    communicator = HttpCommunicator(application, method, path, headers=headers or [])
    response = await communicator.get_response(timeout=5)
    return response["status"], json.loads(response["body"] or b"{}")


@pytest.mark.asyncio
async def test_healthz_answers_without_database_or_host():
    # No Host header, no login, not HTTPS: a load balancer's check.
    status, body = await get("/healthz")
    assert (status, body) == (200, {"status": "ok"})


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_readyz_checks_database_and_channel_layer():
    status, body = await get("/readyz", headers=[(b"host", b"unknown.example")])
    assert (status, body) == (200, {"status": "ok"})


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_readyz_is_503_when_the_database_fails(monkeypatch):
    def broken():
        raise OSError("connection refused")

    monkeypatch.setattr(health, "_database_ping", broken)
    status, body = await get("/readyz")
    assert status == 503
    assert body["problems"] == {"database": "database: OSError: connection refused"}


@pytest.mark.asyncio
async def test_readyz_gives_up_after_the_timeout(monkeypatch, settings):
    settings.READYZ_TIMEOUT = 0.2

    async def hangs():
        await asyncio.sleep(30)

    monkeypatch.setattr(health, "database_ready", hangs)
    monkeypatch.setattr(health, "channel_layer_ready", hangs)
    loop = asyncio.get_running_loop()
    started = loop.time()
    status, body = await get("/readyz")
    assert loop.time() - started < 2
    assert status == 503
    assert set(body["problems"]) == {"database", "channel_layer"}
    assert "no answer within 0.2 s" in body["problems"]["channel_layer"]


@pytest.mark.asyncio
async def test_readyz_is_503_when_redis_is_unreachable(monkeypatch):
    class Unreachable:
        def connection(self, index):
            class Client:
                async def ping(self):
                    raise ConnectionError("Error 111 connecting to 127.0.0.1:1")

            return Client()

    monkeypatch.setattr(health, "get_channel_layer", lambda: Unreachable())
    monkeypatch.setattr(health, "database_ready", lambda: asyncio.sleep(0))
    status, body = await get("/readyz")
    assert status == 503
    assert list(body["problems"]) == ["channel_layer"]


@pytest.mark.asyncio
async def test_only_get_and_head():
    status, _ = await get("/healthz", method="POST")
    assert status == 405


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_other_paths_still_reach_django():
    communicator = HttpCommunicator(
        application, "GET", "/healthz/x", headers=[(b"host", b"127.0.0.1")]
    )
    response = await communicator.get_response(timeout=5)
    assert response["status"] == 404
