"""`/healthz` and `/readyz` for load balancers, answered before Django sees the request.

They sit in front of Django's HTTP application (see `virta/asgi.py`) so that no middleware
runs: no host check (HAProxy's health check may send no `Host`), no HTTPS redirect (checks
come over plain HTTP from inside the network), no session, no login.

- `/healthz`: the process is alive and its event loop turns. No database, no I/O.
- `/readyz`: the database answers `SELECT 1` and the channel layer answers (Redis PING),
  each within `READYZ_TIMEOUT` seconds; 503 with what failed otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from channels.db import DatabaseSyncToAsync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)

HEALTH_PATHS = frozenset({"/healthz", "/readyz"})

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def _database_ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def database_ready() -> None:
    """Raises unless the database answers."""
    await DatabaseSyncToAsync(_database_ping, thread_sensitive=False)()


async def channel_layer_ready() -> None:
    """Raises unless the channel layer answers (Redis: PING on its first host)."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    connect = getattr(layer, "connection", None)
    if connect is None:
        # In-memory layer (one process): nothing to reach.
        return
    await connect(0).ping()


async def _check(name: str, probe: Callable[[], Awaitable[None]], timeout: float) -> str:
    try:
        await asyncio.wait_for(probe(), timeout)
    except TimeoutError:
        return f"{name}: no answer within {timeout:g} s"
    except Exception as exc:  # any failure means "not ready"
        return f"{name}: {type(exc).__name__}: {exc}"[:300]
    return ""


async def readiness() -> dict[str, str]:
    """{check: problem} for every check that failed (empty when ready); checks in parallel."""
    timeout = settings.READYZ_TIMEOUT
    names = ("database", "channel_layer")
    problems = await asyncio.gather(
        _check("database", database_ready, timeout),
        _check("channel_layer", channel_layer_ready, timeout),
    )
    return {name: problem for name, problem in zip(names, problems, strict=True) if problem}


async def _answer(send: Send, status: int, body: dict) -> None:
    content = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"cache-control", b"no-store"),
                (b"content-length", str(len(content)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


def with_health_checks(app: Callable) -> Callable:
    """The ASGI HTTP app `app`, with `/healthz` and `/readyz` answered in front of it."""

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path not in HEALTH_PATHS:
            await app(scope, receive, send)
            return
        if scope.get("method") not in ("GET", "HEAD"):
            await _answer(send, 405, {"status": "method not allowed"})
            return
        if path == "/healthz":
            await _answer(send, 200, {"status": "ok"})
            return
        problems = await readiness()
        if problems:
            logger.warning("Not ready: %s", "; ".join(problems.values()))
            await _answer(send, 503, {"status": "unavailable", "problems": problems})
        else:
            await _answer(send, 200, {"status": "ok"})

    return application
