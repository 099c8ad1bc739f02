"""Hand the application the whole websocket path, `;parameters` included.

Autobahn (under daphne) splits the request URI with `urllib.parse.urlparse`, which cuts
`;params` off the last path segment and drops them: `/ocpp/CP;X` reached the application
as `/ocpp/CP`, and a charger (or anyone) connecting there was admitted as station `CP`.
`keep_path_parameters()` puts them back into the path daphne builds its scope from, so
the CBID check sees `CP;X` and refuses it (`;` is no CBID character) like any bad CBID.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def keep_path_parameters() -> bool:
    """Patch daphne's websocket protocol (once); False where daphne is not installed."""
    try:
        from daphne.ws_protocol import WebSocketProtocol
    except ImportError:
        return False
    original = WebSocketProtocol.onConnect
    if getattr(original, "keeps_path_parameters", False):
        return True

    def on_connect(self, request):
        # `http_request_uri` is the request line's URI as sent; `request.path` is what
        # urlparse left of it (`/ocpp/CP;` loses even its bare `;`). urlsplit keeps it.
        path = urlsplit(getattr(self, "http_request_uri", "") or "").path
        if path and path != request.path:
            request.path = path
        return original(self, request)

    on_connect.keeps_path_parameters = True
    WebSocketProtocol.onConnect = on_connect
    return True
