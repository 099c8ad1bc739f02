"""What runs when a command's result arrives: handlers registered per command kind.

The command recorder (`commands.command_record_result`) knows no command's meaning. A
service that must react to an outcome registers a handler for the kind instead of being
imported by the recorder:

    @command_outcome("change_configuration")
    def password_outcome(outcome: CommandOutcome) -> None:
        ...

Handlers run after the Command has its final status, inside the recorder's transaction
(on a database thread when the gateway records it), in the order they were registered;
each decides for itself whether the outcome concerns it. The modules that hold handlers
are imported by `StationsConfig.ready()`, so every handler is registered before the
first result arrives.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from ocpp_spec.commands import command_kind


@dataclass(frozen=True)
class CommandOutcome:
    """A sent Command's result, as the recorder wrote it."""

    command_id: int
    station_id: int
    kind: str
    action: str
    payload: dict
    # accepted / rejected / error (Command.Status).
    status: str
    # The charger's CALLRESULT payload; None when it answered with a CALLERROR.
    response: dict | None


OutcomeHandler = Callable[[CommandOutcome], None]

_handlers: defaultdict[str, list[OutcomeHandler]] = defaultdict(list)


def command_outcome(kind: str) -> Callable[[OutcomeHandler], OutcomeHandler]:
    """Decorator: run the handler for every result of a Command of `kind`."""
    command_kind(kind)  # An unknown kind is a typo: fail at import, not never.

    def register(handler: OutcomeHandler) -> OutcomeHandler:
        if handler not in _handlers[kind]:
            _handlers[kind].append(handler)
        return handler

    return register


def command_outcome_dispatch(outcome: CommandOutcome) -> None:
    """Run the handlers registered for the outcome's kind."""
    for handler in _handlers.get(outcome.kind, ()):
        handler(outcome)
