from django.apps import AppConfig


class StationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "stations"

    def ready(self) -> None:
        # Register the command outcome handlers (stations.services.command_outcomes)
        # before the first result arrives.
        from stations.services import device_model, local_list, passwords  # noqa: F401
