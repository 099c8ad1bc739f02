"""The CPO a panel user is working in: its name and the user's role in the header, its
time zone for every time shown, and the default scope of Home and Sessions.

Kept in the session (set at login, changed with the header's switcher, refreshed every
REFRESH seconds), so a page costs no query for it. It only narrows what a page shows:
every read still starts from `for_user`, so a stale entry (a membership removed since)
cannot widen anything.

    request.current_cpo  # CurrentCpo | None (None: all the user's CPOs; superusers)
"""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from cpo.models import Cpo, Membership

SESSION_KEY = "current_cpo"
# Seconds after which the session's copy is read again (a role or time zone changed).
REFRESH = 300


@dataclass(frozen=True)
class CurrentCpo:
    pk: int
    name: str
    time_zone: str
    # The user's role there; "superuser" for system administrators.
    role: str

    @property
    def role_label(self) -> str:
        if self.role == "superuser":
            return "System administrator"
        return Membership.Role(self.role).label


def cpo_choices_for(user) -> list[tuple[int, str]]:
    """(pk, name) of the CPOs the user may switch to."""
    return list(Cpo.objects.for_user(user).order_by("name").values_list("pk", "name")[:200])


def cpo_current_set(request: HttpRequest, cpo_pk: int | None) -> CurrentCpo | None:
    """Make `cpo_pk` the user's current CPO (None: the default) and remember it.

    A CPO the user does not belong to is ignored (the default is taken instead).
    """
    user = request.user
    cpos = Cpo.objects.for_user(user)
    cpo = cpos.filter(pk=cpo_pk).first() if cpo_pk is not None else None
    if cpo is None and not user.is_superuser:
        # Default: the user's first CPO by name.
        cpo = cpos.order_by("name").first()
    current = None
    if cpo is not None:
        role = Membership.objects.filter(user=user, cpo=cpo).values_list("role", flat=True).first()
        current = CurrentCpo(
            pk=cpo.pk,
            name=cpo.name,
            time_zone=cpo.time_zone,
            role=role or ("superuser" if user.is_superuser else Membership.Role.VIEWER),
        )
    request.session[SESSION_KEY] = {
        "cpo": None if current is None else vars(current),
        "chosen": cpo_pk is not None,
        "choices": cpo_choices_for(user),
        "at": time.time(),
    }
    return current


def cpo_current(request: HttpRequest) -> CurrentCpo | None:
    """The current CPO from the session, read again when older than REFRESH."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    stored = request.session.get(SESSION_KEY)
    if not stored or time.time() - stored.get("at", 0) > REFRESH:
        chosen = stored.get("cpo") if stored and stored.get("chosen") else None
        return cpo_current_set(request, chosen["pk"] if chosen else None)
    return CurrentCpo(**stored["cpo"]) if stored["cpo"] else None


def cpo_choices(request: HttpRequest) -> list[tuple[int, str]]:
    stored = request.session.get(SESSION_KEY) or {}
    return [tuple(choice) for choice in stored.get("choices", [])]


def on_user_logged_in(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """Start every login in the user's default CPO."""
    if request is not None and hasattr(request, "session"):
        request.user = user
        cpo_current_set(request, None)


def zone_of(current: CurrentCpo | None) -> zoneinfo.ZoneInfo:
    name = current.time_zone if current is not None else settings.TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


class CurrentCpoMiddleware:
    """Set `request.current_cpo` and show every time in that CPO's time zone."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        current = cpo_current(request)
        request.current_cpo = current
        timezone.activate(zone_of(current))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
