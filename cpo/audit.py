"""The audit log: who logged in, failed to, logged out, and who changed what.

`audit_record` writes one AuditEvent. Services call it inside their own transaction, so a
change that rolls back leaves no line. Logins, failed logins and logouts come from
Django's auth signals (so the panel, Django admin and any later login path are covered);
password changes from the user model's post_save (the panel's form, admin and
`changepassword` alike). The receivers are connected in `cpo.apps.CpoConfig.ready`.

"From where": a line written while the panel serves a request carries the client's
address, whichever service wrote it: `AuditRequestMiddleware` keeps the request at hand
for the duration (a context variable, so concurrent requests never mix).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from cpo.models import AuditEvent, Cpo

logger = logging.getLogger(__name__)

Action = AuditEvent.Action
TARGET_LIMIT = AuditEvent._meta.get_field("target").max_length
USERNAME_LIMIT = AuditEvent._meta.get_field("username").max_length

# The panel request being served, for lines whose writer was not handed it.
_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


class AuditRequestMiddleware:
    """Keep the request at hand while it is served: its audit lines say where from."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self._async:
            return self._acall(request)
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        token = _current_request.set(request)
        try:
            return await self.get_response(request)
        finally:
            _current_request.reset(token)


def client_address(request: HttpRequest | None) -> str | None:
    """The address of the client that sent `request`, or None when there is none.

    REMOTE_ADDR, unless PANEL_TRUST_X_FORWARDED_FOR: then the last X-Forwarded-For entry,
    the one our own proxy appended (earlier entries are whatever the client claimed).
    """
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR", "")
    if settings.PANEL_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            address = forwarded.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def audit_record(
    *,
    action: str,
    user: AbstractBaseUser | AnonymousUser | None = None,
    cpo: Cpo | int | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    username: str = "",
) -> AuditEvent:
    """Write one audit line. `action` is an AuditEvent.Action (ValueError otherwise).

    `user` None (or anonymous) means the system, or someone not logged in: then `username`
    says who they claimed to be (a failed login). `cpo` may be a Cpo or its id, so callers
    holding only `station.cpo_id` need no query. `request` gives the client address;
    without it, the panel request being served (AuditRequestMiddleware), if any.
    """
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    if user is not None and not user.is_authenticated:
        user = None
    if user is not None:
        username = user.get_username()
    return AuditEvent.objects.create(
        action=action,
        user=user,
        username=(username or "")[:USERNAME_LIMIT],
        cpo_id=cpo.pk if isinstance(cpo, Cpo) else cpo,
        target=str(target)[:TARGET_LIMIT],
        details=details or {},
        remote_addr=client_address(request or _current_request.get()),
    )


# ---- signal receivers (connected in CpoConfig.ready) ------------------------------------


def on_user_logged_in(sender, request: HttpRequest | None, user: AbstractBaseUser, **kwargs):
    audit_record(action=Action.LOGIN, user=user, request=request)


def on_user_logged_out(sender, request: HttpRequest | None, user, **kwargs):
    # `user` is None when nobody was logged in: nothing happened worth a line.
    if user is not None:
        audit_record(action=Action.LOGOUT, user=user, request=request)


def on_user_login_failed(sender, credentials: dict, request: HttpRequest | None = None, **kwargs):
    # Django has already cleansed the password out of `credentials`; the username stays.
    username = str(credentials.get("username") or "")
    audit_record(action=Action.LOGIN_FAILED, username=username, request=request)


def on_user_saved(sender, instance: AbstractBaseUser, created: bool, **kwargs):
    # Whose password, not who changed it: the panel's form is self-service; Django admin's
    # own LogEntry says which superuser changed someone else's.
    name = instance.get_username()
    if created:
        audit_record(action=Action.USER_CREATED, user=instance, target=name)
    # set_password() keeps the new raw password in `_password` until save() has run the
    # password validators' hooks: at save time, the one sign that the password changed.
    elif getattr(instance, "_password", None) is not None:
        audit_record(action=Action.PASSWORD_CHANGED, user=instance, target=name)


# ---- reading ----------------------------------------------------------------------------


def audit_log_for(
    *,
    cpo: Cpo,
    action: str = "",
    user: str = "",
    target: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEvent]:
    """The CPO's audit lines, newest first, narrowed by the filters given.

    `user` and `target` match a part, whatever its case; `since` and `until` are whole
    days (inclusive) in the panel's time zone.
    """
    events = AuditEvent.objects.filter(cpo=cpo)
    if action:
        events = events.filter(action=action)
    if user:
        events = events.filter(username__icontains=user)
    if target:
        events = events.filter(target__icontains=target)
    if since:
        events = events.filter(time__gte=_day_start(since))
    if until:
        events = events.filter(time__lt=_day_start(until + timedelta(days=1)))
    return events.order_by("-time", "-id")


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
