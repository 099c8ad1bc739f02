"""`virta.asgi:application` with a crash the tests can set off: a frame containing
CRASH_MARKER makes the frame path raise, as any unforeseen bug would.

Served by tests/e2e/test_crashed_consumers.py only (`daphne tests.e2e.crashing_asgi:application`).
"""

from virta.asgi import application  # First: it sets Django up.

from ocpp_gateway.protocol import OcppProtocol  # isort: skip

CRASH_MARKER = "crash-me-now"

_route_message = OcppProtocol.route_message


async def _crashing_route_message(self, raw: str, **kwargs) -> None:
    if CRASH_MARKER in raw:
        raise RuntimeError("a crash set off by tests/e2e")
    await _route_message(self, raw, **kwargs)


OcppProtocol.route_message = _crashing_route_message

__all__ = ["application"]
