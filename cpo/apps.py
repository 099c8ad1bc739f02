from django.apps import AppConfig


class CpoConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cpo"
