"""OCPP 2.1: the 2.0.1 handlers, validated against and answered with the 2.1 messages.

Every charger-initiated message handled for 2.0.1 exists in 2.1 as a superset (new
optional fields only), so the handlers are shared; the schemas, the answer classes and
the list of known actions are 2.1's. OCPP-J 2.1 adds two frame types, never answered:
CALLRESULTERROR (the charger could not use one of our answers: logged against it) and
SEND (an unconfirmed message: an `@on_send(action)` method handles it, if there is one;
else it is logged and dropped).
"""

from __future__ import annotations

from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action

from ocpp_gateway.handlers import v201


class ChargePoint(v201.ChargePoint):
    _ocpp_version = "2.1"
    _call = call
    _call_result = call_result
    actions = frozenset(a.value for a in Action)
    rpc_21 = True
