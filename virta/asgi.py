"""ASGI entry point: HTTP goes to Django, websockets under /ocpp/ to the OCPP gateway.

Serve it with daphne (see the Makefile's `run` target).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "virta.settings")
# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from ocpp_gateway.daphne_paths import keep_path_parameters  # noqa: E402
from ocpp_gateway.routing import websocket_application  # noqa: E402
from virta.health import with_health_checks  # noqa: E402
from virta.metrics import with_metrics  # noqa: E402

# Daphne drops `;params` from websocket paths: `/ocpp/CP;X` must not pass for `/ocpp/CP`.
keep_path_parameters()

# No AllowedHostsOriginValidator on the websocket side: chargers send no Origin header.
application = ProtocolTypeRouter(
    {
        "http": with_health_checks(with_metrics(django_asgi_app)),
        "websocket": websocket_application,
    }
)

# Last: everything imported so far lives as long as the process (see virta/gc_tuning.py).
from django.conf import settings  # noqa: E402

from virta.gc_tuning import gc_tune  # noqa: E402

gc_tune(freeze=settings.GC_FREEZE_AT_START, thresholds=settings.GC_THRESHOLDS)
