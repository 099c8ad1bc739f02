"""The panel's error pages (400, 403, 404, 429, CSRF failure; 500 is Django's own view with
templates/500.html): inside the panel layout, with the reason and a way back.

A 403 shows the reason the code gave (`PermissionDenied("Only CPO admins can add stations.")`);
a 404 never does: its message may name what the user may not know exists.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


def _page(request: HttpRequest, status: int, reason: str) -> HttpResponse:
    return render(request, f"{status}.html", {"reason": reason}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page(request, 400, _("The request could not be understood. Go back and try again."))


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if exception is not None and exception.args else ""
    return _page(request, 403, reason or _("Your role does not allow this."))


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _page(
        request, 404, _("There is no such page, or it belongs to a CPO you are not a member of.")
    )


def too_many_requests(request: HttpRequest, reason: str = "") -> HttpResponse:
    return _page(request, 429, reason or _("Too many requests. Wait a moment and try again."))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a 403 that says what happened, not Django's developer page."""
    return _page(
        request,
        403,
        _(
            "The form could not be sent: it was open too long, or you logged in or out "
            "in another tab. Reload the page and send it again."
        ),
    )
