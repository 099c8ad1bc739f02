from django.apps import AppConfig


class OcppGatewayConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ocpp_gateway"
