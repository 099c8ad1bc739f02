"""WebSocket close codes the backend closes a charger's socket with.

RFC 6455 names 1008 (policy violation) and 1009 (message too big), but autobahn (under
daphne) lets an application close only with 1000 or 3000-4999: anything else ends the
consumer with "invalid close code" and daphne drops the socket with 1011, skipping the
session cleanup. Our own reasons therefore live in 4000-4999 (private use), each one
mirroring the RFC code it stands for in its last digits where there is one:

| code | reason                                   | RFC 6455 meaning it stands for |
| ---- | ---------------------------------------- | ------------------------------ |
| 1000 | normal closure                           | 1000                           |
| 4000 | replaced by a newer connection           | -                              |
| 4008 | policy: the charger kept flooding        | 1008 policy violation          |
| 4009 | a frame over OCPP_MAX_FRAME_BYTES        | 1009 message too big           |
| 4011 | internal error while handling the socket | 1011 internal error            |
"""

from __future__ import annotations

CLOSE_NORMAL = 1000
# A newer connection of the same station took over.
CLOSE_REPLACED = 4000
# Rate limit: the charger kept sending over its frame rate.
CLOSE_POLICY_VIOLATION = 4008
# A text frame larger than OCPP_MAX_FRAME_BYTES.
CLOSE_MESSAGE_TOO_BIG = 4009
# The backend failed while handling the connection (the session is cleaned up anyway).
CLOSE_INTERNAL_ERROR = 4011


def close_code_allowed(code: int) -> bool:
    """Whether autobahn lets the application close with `code` (1000, or 3000-4999)."""
    return code == CLOSE_NORMAL or 3000 <= code <= 4999
