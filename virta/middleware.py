"""Panel-wide response and request hygiene (issue 11 point 6): hostile query strings are a
400 rather than a 500, every page carries a Content-Security-Policy, and Unicode bidi
controls in what chargers sent cannot reorder what staff read."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.deprecation import MiddlewareMixin

# Explicit embeddings, overrides and isolates, and the marks: what makes "gpj.exe" of
# "exe.jpg". A charger may send them in any text (vendor, model, status info).
BIDI_CONTROLS = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_BIDI_BYTES = re.compile(b"|".join(re.escape(c.encode("utf-8")) for c in BIDI_CONTROLS))


def _visible(match: re.Match) -> bytes:
    return f"[U+{ord(match.group().decode('utf-8')):04X}]".encode()


def bidi_neutralised(text: str) -> str:
    """`text` with every bidi control shown as its code point, e.g. "[U+202E]"."""
    return "".join(f"[U+{ord(c):04X}]" if c in BIDI_CONTROLS else c for c in text)


class HostileInputMiddleware(MiddlewareMixin):
    """A query string no view takes is refused with 400 before any view sees it.

    NUL characters: PostgreSQL text refuses them, so `?q=%00` reached the database and
    answered 500. No query parameter of ours takes one.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                return HttpResponseBadRequest(
                    "A NUL character is not allowed in the query string.",
                    content_type="text/plain; charset=utf-8",
                )
        return None


class PanelHeadersMiddleware(MiddlewareMixin):
    """Content-Security-Policy on every answer; bidi controls neutralised in HTML pages.

    The panel's scripts are files under /static/ (no inline script, no inline style, no
    `on…=` handler), so `script-src 'self'` holds them all; Django admin keeps inline
    styles of its own and gets ADMIN_CONTENT_SECURITY_POLICY.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if "Content-Security-Policy" not in response:
            admin = request.path.startswith("/admin/")
            response["Content-Security-Policy"] = (
                settings.ADMIN_CONTENT_SECURITY_POLICY
                if admin
                else settings.CONTENT_SECURITY_POLICY
            )
        content_type = response.get("Content-Type", "")
        if (
            content_type.startswith("text/html")
            and not response.streaming
            and _BIDI_BYTES.search(response.content)
        ):
            # Our own templates carry no bidi control: any is charger- or user-supplied.
            response.content = _BIDI_BYTES.sub(_visible, response.content)
        return response
