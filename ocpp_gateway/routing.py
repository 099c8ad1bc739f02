"""Websocket routing.

Channels' URLRouter raises when no route matches, which daphne turns into a 500. Every
websocket path therefore lands on a consumer: `/ocpp/<anything>` on the station consumer
(which validates the CBID itself and refuses cleanly), anything else on one that refuses.
"""

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from django.urls import re_path

from ocpp_gateway.consumers import StationConsumer
from ocpp_gateway.refusals import refuse


class RefuseConsumer(AsyncWebsocketConsumer):
    """Refuses every handshake (HTTP 403) on paths that are not OCPP endpoints."""

    async def connect(self) -> None:
        await refuse(self.scope, reason="bad_path", detail=self.scope.get("path", "")[:200])
        await self.close()


websocket_urlpatterns = [
    # `scope["path"]` is already percent-decoded: an encoded "/" shows up here as "/"
    # and the CBID check refuses it.
    re_path(r"^ocpp/(?P<cbid>.*)$", StationConsumer.as_asgi()),
    re_path(r"", RefuseConsumer.as_asgi()),
]

websocket_application = URLRouter(websocket_urlpatterns)
