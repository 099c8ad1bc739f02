"""DataTransfer: vendor-specific messages, answered by the handler registered for the vendor.

Empty by default, so every DataTransfer is answered UnknownVendorId. A vendor integration
registers a handler for its vendorId (case-insensitive, as OCPP's CiString is):

    @data_transfer_handler("com.acme")
    def acme(request: DataTransferRequest) -> DataTransferResult:
        ...

Sync handlers may use the ORM (they run on the database threads, `ocpp_gateway.db`); async ones
are awaited. A handler that raises is answered with CALLERROR InternalError.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ocpp_gateway.db import db_call


@dataclass
class DataTransferRequest:
    station_id: int
    cbid: str
    version: str
    vendor_id: str
    message_id: str = ""
    # 1.6 sends a string; 2.x any JSON value.
    data: Any = None


@dataclass
class DataTransferResult:
    # Accepted, Rejected, UnknownMessageId or UnknownVendorId.
    status: str
    data: Any = None


VendorHandler = Callable[[DataTransferRequest], DataTransferResult | Awaitable[DataTransferResult]]

_handlers: dict[str, VendorHandler] = {}


def register_vendor_handler(vendor_id: str, handler: VendorHandler) -> None:
    """Answer DataTransfer of `vendor_id` with `handler` (replacing any earlier one)."""
    _handlers[vendor_id.lower()] = handler


def unregister_vendor_handler(vendor_id: str) -> None:
    _handlers.pop(vendor_id.lower(), None)


def data_transfer_handler(vendor_id: str) -> Callable[[VendorHandler], VendorHandler]:
    """Decorator form of `register_vendor_handler`."""

    def register(handler: VendorHandler) -> VendorHandler:
        register_vendor_handler(vendor_id, handler)
        return handler

    return register


async def data_transfer_dispatch(request: DataTransferRequest) -> DataTransferResult:
    """The registered vendor's answer, or UnknownVendorId."""
    handler = _handlers.get(request.vendor_id.lower())
    if handler is None:
        return DataTransferResult(status="UnknownVendorId")
    if inspect.iscoroutinefunction(handler):
        return await handler(request)
    return await db_call(handler, request)
