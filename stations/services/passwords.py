"""Charger (Basic-auth) passwords issued from the panel: at claim time or later."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied

from cpo.audit import Action, audit_record
from ocpp_spec.passwords import generate_password
from stations.models import Protocol, Station
from stations.services.commands import user_may_command
from stations.services.registration import station_password_rotate, station_password_set


@dataclass
class IssuedPassword:
    password: str
    # True: sent to the connected charger, which must confirm it (the old password, or none,
    # stays valid until then). False: stored at once; the operator configures the charger.
    sent_to_charger: bool


def station_password_issue(*, station: Station, user) -> IssuedPassword:
    """Give an OCPP station a new generated password, to be shown to the user once.

    A connected charger is sent it through the command path (ChangeConfiguration /
    SetVariables) and keeps its current credentials until it confirms, so it is never
    locked out. An offline one gets it at once: security profile 1 holds from its next
    connection, with the password the operator sets on it by hand.
    Raises PermissionDenied (viewers, other CPOs) and ValueError (not an OCPP station).
    """
    if not user_may_command(user=user, station=station):
        raise PermissionDenied("Only admins and technicians of the station's CPO may do this.")
    if station.protocol != Protocol.OCPP:
        raise ValueError("Only OCPP stations use charger passwords.")
    if station.connected:
        password = station_password_rotate(station=station, user=user)
        sent = True
    else:
        password = generate_password()
        station_password_set(station=station, password=password)
        sent = False
    audit_record(
        action=Action.STATION_PASSWORD_ISSUED,
        user=user,
        cpo=station.cpo_id,
        target=station.cbid,
        details={"sent_to_charger": sent},
    )
    return IssuedPassword(password=password, sent_to_charger=sent)
