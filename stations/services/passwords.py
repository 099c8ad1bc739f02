"""Charger (Basic-auth) passwords: checked at the handshake, issued, rotated, confirmed.

A password issued from the panel (at claim time or later) is stored at once for an
offline charger; a connected one is sent it through the command path and keeps its old
credentials until it confirms (`station_password_outcome`), so it is never locked out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from cpo.audit import Action, audit_record
from ocpp_spec.commands import ACCEPTED, REJECTED
from ocpp_spec.passwords import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    basic_auth_problem,
    generate_password,
    hash_password,
    needs_rehash,
    password_in,
    password_setting,
    redact_password,
    verify_password,
)
from stations.models import Command, ConnectionAttempt, OcppVersion, Protocol, Station
from stations.services.access import station_check_write
from stations.services.command_outcomes import CommandOutcome, command_outcome
from stations.services.commands import command_request, command_request_system
from stations.services.refusals import ConnectionRefused, connection_check_not_locked_out

logger = logging.getLogger(__name__)


@dataclass
class IssuedPassword:
    password: str
    # True: sent to the connected charger, which must confirm it (the old password, or none,
    # stays valid until then). False: stored at once; the operator configures the charger.
    sent_to_charger: bool


def station_password_issue(*, station: Station, user) -> IssuedPassword:
    """Give an OCPP station a new generated password, to be shown to the user once.

    `user` None: the system (a system administrator's `manage.py stations password`).
    A connected charger is sent it through the command path (ChangeConfiguration /
    SetVariables) and keeps its current credentials until it confirms, so it is never
    locked out. An offline one gets it at once: security profile 1 holds from its next
    connection, with the password the operator sets on it by hand.
    Raises PermissionDenied (viewers, other CPOs) and ValueError (not an OCPP station, a
    CBID that Basic auth cannot carry).
    """
    if user is not None:
        station_check_write(user=user, station=station)
    if station.protocol != Protocol.OCPP:
        raise ValueError("Only OCPP stations use charger passwords.")
    _check_basic_auth_possible(station)
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


# ---- the handshake ----------------------------------------------------------------------


def station_credentials_check(
    station: Station,
    *,
    cbid: str,
    version: str,
    credentials: tuple[str, str] | None,
    secure: bool,
    remote_addr: str = "",
    now: datetime | None = None,
) -> None:
    """Admit or refuse a charger's handshake credentials (security profiles 1 and 2).

    A station without a password lets anyone in (profile 0). The rotated, pending password
    is accepted too, and then becomes the password. Raises ConnectionRefused.
    """
    if station.security_profile >= 2 and not secure:
        raise ConnectionRefused(
            ConnectionAttempt.Reason.PLAIN_WS,
            "security profile 2 requires wss (TLS)",
            cbid=station.cbid,
        )
    if not station.auth_password_hash:
        return
    if credentials is None:
        # Not a guess: refused, never counted towards a lock-out (anyone could lock a
        # charger out by sending nothing).
        raise ConnectionRefused(
            ConnectionAttempt.Reason.NO_CREDENTIALS, "no Basic auth credentials", cbid=station.cbid
        )
    connection_check_not_locked_out(station, remote_addr=remote_addr, now=now or timezone.now())

    def bad(detail: str) -> ConnectionRefused:
        return ConnectionRefused(ConnectionAttempt.Reason.BAD_PASSWORD, detail, cbid=station.cbid)

    username, password = credentials
    if username != cbid:
        raise bad("username is not the CBID")
    if verify_password(password, station.auth_password_hash, version=version):
        if needs_rehash(station.auth_password_hash):
            _password_rehash(station, password=password, version=version)
        if station.auth_password_used_at is None:
            Station.objects.filter(
                pk=station.pk, auth_password_hash=station.auth_password_hash
            ).update(auth_password_used_at=timezone.now())
        return
    pending = station.auth_password_pending_hash
    if pending and verify_password(password, pending, version=version):
        # The charger uses the rotated password: it has it, so it becomes the password.
        Station.objects.filter(pk=station.pk, auth_password_pending_hash=pending).update(
            auth_password_hash=pending,
            auth_password_pending_hash="",
            auth_password_used_at=timezone.now(),
        )
        logger.info("Station %s logged in with its new password: rotation done", station.cbid)
        return
    raise bad("wrong password")


def _password_rehash(station: Station, *, password: str, version: str) -> None:
    # The charger may have sent the hex form (1.6): store the text it stands for.
    if version == "1.6" and not verify_password(
        password, station.auth_password_hash, version="2.0.1"
    ):
        password = bytes.fromhex(password).decode("utf-8")
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return
    Station.objects.filter(pk=station.pk, auth_password_hash=station.auth_password_hash).update(
        auth_password_hash=hash_password(password)
    )


# ---- setting and rotating -------------------------------------------------------------


def station_password_set(*, station: Station, password: str) -> None:
    """Give the station a Basic-auth password (e.g. generated when it is claimed).

    The charger must be configured with it by hand (or by `station_password_rotate` once it
    is connected). Security profile 0 becomes 1: a password is then required.
    Raises ValueError for a password outside 16-40 characters, or a CBID that Basic auth
    cannot carry.
    """
    _check_basic_auth_possible(station)
    encoded = hash_password(password)
    with transaction.atomic():
        fresh = Station.objects.select_for_update().get(pk=station.pk)
        _password_make_current(fresh, encoded)
    station.auth_password_hash = encoded
    station.auth_password_pending_hash = ""
    station.auth_password_used_at = None
    station.security_profile = fresh.security_profile


def station_password_rotate(*, station: Station, user=None) -> str:
    """Give a connected station a new Basic-auth password; returns it (show it once).

    The new password is kept as pending: the old one stays valid until the charger
    confirms, by answering the ChangeConfiguration(AuthorizationKey) (1.6, hex-encoded as
    1.6 requires) or SetVariables(SecurityCtrlr.BasicAuthPassword) (2.x) Accepted, or by
    logging in with it (after a RebootRequired). With `user`, the command path checks that
    the user may command the station (PermissionDenied). Raises ValueError when the
    command cannot be delivered (offline, not an OCPP station): nothing changes then.
    """
    fresh = Station.objects.get(pk=station.pk)
    if fresh.protocol != Protocol.OCPP:
        raise ValueError("Only OCPP stations have Basic-auth passwords.")
    _check_basic_auth_possible(fresh)
    password = generate_password()
    pending = hash_password(password)
    Station.objects.filter(pk=fresh.pk).update(auth_password_pending_hash=pending)
    params = password_setting(version=fresh.ocpp_version or OcppVersion.V16, password=password)
    try:
        if user is not None:
            command = command_request(
                station=fresh, kind="change_configuration", params=params, user=user
            )
        else:
            command = command_request_system(
                station=fresh, kind="change_configuration", params=params
            )
    except Exception:
        _password_pending_clear(station_id=fresh.pk, pending=pending)
        raise
    if command is None or command.status not in (Command.Status.QUEUED, Command.Status.SENT):
        _password_pending_clear(station_id=fresh.pk, pending=pending)
        if command is not None:
            _command_redact(command_id=command.pk, action=command.action, payload=command.payload)
        raise ValueError(
            command.error if command is not None else "The password could not be sent."
        )
    station.auth_password_pending_hash = pending
    return password


def _check_basic_auth_possible(station: Station) -> None:
    problem = basic_auth_problem(station.cbid)
    if problem:
        raise ValueError(problem)


def _password_pending_clear(*, station_id: int, pending: str) -> None:
    Station.objects.filter(pk=station_id, auth_password_pending_hash=pending).update(
        auth_password_pending_hash=""
    )


def _charger_status(response: dict | None) -> str:
    if not isinstance(response, dict):
        return ""
    if isinstance(response.get("status"), str):
        return response["status"]
    results = response.get("setVariableResult")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        return str(results[0].get("attributeStatus", ""))
    return ""


def _command_redact(*, command_id: int, action: str, payload: dict) -> None:
    redacted = redact_password(action, payload)
    if redacted != payload:
        Command.objects.filter(pk=command_id).update(payload=redacted)


def _password_make_current(station: Station, encoded: str) -> None:
    """`encoded` becomes the station's password, no other pending; a password is required."""
    station.auth_password_hash = encoded
    station.auth_password_pending_hash = ""
    station.auth_password_used_at = None
    station.security_profile = max(station.security_profile, 1)
    station.save(
        update_fields=[
            "auth_password_hash",
            "auth_password_pending_hash",
            "auth_password_used_at",
            "security_profile",
            "updated_at",
        ]
    )


@command_outcome("change_configuration")
def station_password_outcome(outcome: CommandOutcome) -> None:
    """A password-setting Command got its result (any other change_configuration: nothing).

    Accepted by the charger: the pending password becomes the password. RebootRequired:
    both stay valid until the charger logs in with the new one. Refused: the pending one
    is dropped. Either way the password is blanked out of the Command's payload.
    """
    password = password_in(outcome.action, outcome.payload)
    if password is None:
        return
    _command_redact(command_id=outcome.command_id, action=outcome.action, payload=outcome.payload)
    with transaction.atomic():
        station = Station.objects.select_for_update().get(pk=outcome.station_id)
        pending = station.auth_password_pending_hash
        if not pending or not verify_password(password, pending, version="2.0.1"):
            return  # A newer rotation replaced it, or it was already settled.
        charger_status = _charger_status(outcome.response)
        if outcome.status == ACCEPTED and charger_status == "Accepted":
            _password_make_current(station, pending)
            logger.info("Station %s confirmed its new password", station.cbid)
        elif outcome.status == REJECTED:
            Station.objects.filter(pk=station.pk).update(auth_password_pending_hash="")
            logger.warning("Station %s refused its new password", station.cbid)
