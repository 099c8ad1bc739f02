from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    """A client, not part of the server: an app only for `manage.py simulate_charger`."""

    name = "simulator"
