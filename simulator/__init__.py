"""A charger simulator for people without hardware (and for the end-to-end tests).

It speaks OCPP-J 1.6 (`Simulator16`), 2.0.1 (`Simulator201`) or 2.1 (`Simulator21`, the
same station) with the `ocpp` library's ChargePoint classes over `websockets`, like a real
charger would:

- connects to `<url>/<CBID>` offering the version's subprotocol, with HTTP Basic auth
  (username = CBID) when it has a password;
- boots, and boots again after the interval while Pending or Rejected, or at once when the
  backend sends TriggerMessage(BootNotification); told to `stay_pending`, it waits for
  that trigger, answering what a station in the pool is asked meanwhile (configuration,
  a GetBaseReport in several NotifyReport parts, triggered messages of each connector);
- once Accepted: reports every connector's status, sends heartbeats at the interval the
  backend gave, and optionally runs a transaction with rising meter values, which it can
  sign (simulated OCMF), resend as if answers were lost, and (2.x) hold back and send
  at the end in another order, as chargers that were offline or retried do;
- answers the backend's calls (Reset, TriggerMessage, configuration, availability, unlock,
  remote start/stop, ClearCache, DataTransfer; 2.x: GetVariables, SetVariables,
  GetBaseReport followed by NotifyReport, in `report_parts` parts);
- takes a new password from the backend (1.6 AuthorizationKey, 2.x BasicAuthPassword) and
  logs in with it from its next connection;
- stays connected: reconnects, backing off, whenever the backend closes the connection
  (unless `exit_on_close`).

`run_simulator()` runs the whole life (reconnecting after a Reset); `open_simulator()` gives
a connected simulator to drive step by step. `manage.py simulate_charger` wraps the former.
"""

from simulator.base import (
    CLOSE_REPLACED,
    EVENT_ORDERS,
    Backoff,
    HandshakeRefused,
    SimulatorBase,
    SimulatorFailed,
    SimulatorOptions,
    StationState,
    TransactionState,
)
from simulator.run import SIMULATORS, connect, open_simulator, run_simulator
from simulator.v16 import Simulator16
from simulator.v201 import Simulator21, Simulator201

__all__ = [
    "CLOSE_REPLACED",
    "Backoff",
    "EVENT_ORDERS",
    "SIMULATORS",
    "HandshakeRefused",
    "Simulator16",
    "Simulator21",
    "Simulator201",
    "SimulatorBase",
    "SimulatorFailed",
    "SimulatorOptions",
    "StationState",
    "TransactionState",
    "connect",
    "open_simulator",
    "run_simulator",
]
