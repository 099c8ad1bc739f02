from django.apps import AppConfig


class CpoConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cpo"

    def ready(self) -> None:
        # The audit log hears every login, failed login, logout and password change,
        # whichever view or command caused it.
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
        from django.db.models.signals import post_save

        from cpo import audit, current

        user_logged_in.connect(audit.on_user_logged_in, dispatch_uid="cpo.audit.login")
        user_logged_in.connect(current.on_user_logged_in, dispatch_uid="cpo.current.login")
        user_logged_out.connect(audit.on_user_logged_out, dispatch_uid="cpo.audit.logout")
        user_login_failed.connect(audit.on_user_login_failed, dispatch_uid="cpo.audit.failed")
        post_save.connect(
            audit.on_user_saved, sender=get_user_model(), dispatch_uid="cpo.audit.user_saved"
        )
