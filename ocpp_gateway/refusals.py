"""Refused handshakes: logged for operators and recorded for superusers.

Daphne answers every refused handshake with HTTP 403 whatever the reason, so the reason
only shows here.
"""

from __future__ import annotations

import logging

from ocpp_gateway.db import db_call
from stations.services.registration import connection_refusal_record

logger = logging.getLogger("ocpp_gateway.refusals")


def remote_addr(scope: dict) -> str:
    client = scope.get("client") or ("", 0)
    return str(client[0] or "")


async def refuse(scope: dict, *, reason: str, detail: str = "", cbid: str = "") -> None:
    addr = remote_addr(scope)
    logger.warning(
        "Refused OCPP handshake: reason=%s cbid=%r addr=%s path=%r %s",
        reason,
        cbid[:100],
        addr,
        scope.get("path", "")[:200],
        detail,
    )
    try:
        await db_call(
            connection_refusal_record, cbid=cbid, remote_addr=addr, reason=reason, detail=detail
        )
    except Exception:
        logger.exception("Could not record the refused handshake")
