"""`/metrics` in Prometheus' text format, answered before Django (like `/healthz`).

Off unless protected: with neither `METRICS_TOKEN` nor `METRICS_ALLOWED_ADDRESSES` set it
is a 404. With a token, a scrape must send `Authorization: Bearer <token>`; with an
allow-list, it must come from one of those addresses or networks; with both, both.

With `PROMETHEUS_MULTIPROC_DIR` set (the same empty directory for every daphne process of
the host, see the README), any process answers with the sum of all of them
(`prometheus_client`'s multiprocess mode); without it, with its own figures. The number
of open alerts is read from the database at each scrape.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Callable, Iterator

from channels.db import DatabaseSyncToAsync
from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from alerts.services.alert_list import alerts_open_counts

METRICS_PATH = "/metrics"


class AlertsCollector:
    """`virta_alerts_open{kind, state}` from the database, at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "virta_alerts_open",
            "Alerts that are open or acknowledged (not resolved), per rule and state.",
            labels=["kind", "state"],
        )
        for (kind, state), count in sorted(alerts_open_counts().items()):
            family.add_metric([kind, state], count)
        yield family


def _exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    alerts = CollectorRegistry()
    alerts.register(AlertsCollector())
    return generate_latest(registry) + generate_latest(alerts)


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in settings.METRICS_ALLOWED_ADDRESSES]


def scrape_allowed(scope: dict) -> bool | None:
    """True/False for an allowed/refused scrape; None when /metrics is switched off."""
    token, networks = settings.METRICS_TOKEN, _networks()
    if not token and not networks:
        return None
    if token:
        headers = dict(scope.get("headers") or [])
        sent = headers.get(b"authorization", b"").decode("latin-1")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return False
    if networks:
        client = (scope.get("client") or ("", 0))[0]
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        if not any(address in network for network in networks):
            return False
    return True


async def _answer(send: Callable, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"cache-control", b"no-store"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def with_metrics(app: Callable) -> Callable:
    """The ASGI HTTP app `app`, with `/metrics` answered in front of it."""

    async def application(scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope.get("path") != METRICS_PATH:
            await app(scope, receive, send)
            return
        allowed = scrape_allowed(scope)
        if allowed is None:
            await _answer(send, 404, b"Not Found\n", b"text/plain")
        elif not allowed:
            await _answer(send, 403, b"Forbidden\n", b"text/plain")
        else:
            body = await DatabaseSyncToAsync(_exposition, thread_sensitive=False)()
            await _answer(send, 200, body, CONTENT_TYPE_LATEST.encode())

    return application
