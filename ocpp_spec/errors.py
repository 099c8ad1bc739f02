"""OCPP-J error codes, which the versions spell differently."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorCodes:
    format_violation: str
    occurrence_violation: str
    type_violation: str = "TypeConstraintViolation"
    property_violation: str = "PropertyConstraintViolation"
    protocol_error: str = "ProtocolError"
    not_implemented: str = "NotImplemented"
    not_supported: str = "NotSupported"
    internal_error: str = "InternalError"
    security_error: str = "SecurityError"
    generic_error: str = "GenericError"
    # The frame itself is not an RPC message (no readable id, wrong shape).
    rpc_framework_error: str = "ProtocolError"
    message_type_not_supported: str = "ProtocolError"
    # A CALL reusing a message id of this connection: the RPC rule broken, not the payload.
    duplicate_id: str = "ProtocolError"


# OCPP-J 1.6 §4.2.3 (with the spec's own spellings).
V16_ERRORS = ErrorCodes(
    format_violation="FormationViolation",
    occurrence_violation="OccurenceConstraintViolation",
    rpc_framework_error="FormationViolation",
    message_type_not_supported="FormationViolation",
)

# OCPP-J 2.0.1 / 2.1 part 4 §4.3.
V2_ERRORS = ErrorCodes(
    format_violation="FormatViolation",
    occurrence_violation="OccurrenceConstraintViolation",
    rpc_framework_error="RpcFrameworkError",
    message_type_not_supported="MessageTypeNotSupported",
    duplicate_id="RpcFrameworkError",
)


def error_codes_for(version: str) -> ErrorCodes:
    return V16_ERRORS if version == "1.6" else V2_ERRORS


class CallErrorReply(Exception):
    """Raised inside the frame path to answer with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.details = details or {}
