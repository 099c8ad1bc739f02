from __future__ import annotations

from collections.abc import Iterable
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CpoQuerySet(models.QuerySet):
    def for_user(self, user, roles: Iterable[str] | None = None) -> CpoQuerySet:
        """CPOs the user belongs to, optionally only those where they hold one of `roles`.

        Superusers get every CPO, whatever the roles asked.
        """
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self.all()
        memberships = Membership.objects.filter(user=user)
        if roles is not None:
            memberships = memberships.filter(role__in=list(roles))
        return self.filter(pk__in=memberships.values("cpo_id"))


def default_time_zone() -> str:
    return settings.TIME_ZONE


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(
            _("%(value)s is not a known time zone (e.g. Europe/Helsinki)."), params={"value": value}
        )


class Cpo(models.Model):
    """A charge point operator: the organisation that owns stations."""

    name = models.CharField(max_length=100)
    # The panel shows this CPO's times in its zone (cpo.current.CurrentCpoMiddleware).
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text=_("IANA name, e.g. Europe/Helsinki; every time in the panel is shown in it"),
    )
    # Authorization answers ConcurrentTx for a tag already in a running session.
    one_session_per_tag = models.BooleanField(
        _("one session at a time per ID tag"),
        default=True,
        help_text=_("A tag already charging somewhere is refused (ConcurrentTx) elsewhere."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CpoQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "CPO"
        verbose_name_plural = "CPOs"
        constraints = [
            models.UniqueConstraint(Lower("name"), name="cpo_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one CPO."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        TECHNICIAN = "technician", "Technician"
        VIEWER = "viewer", "Viewer"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    cpo = models.ForeignKey(Cpo, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cpo__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "cpo"], name="membership_user_cpo_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.cpo} ({self.role})"


# Roles that may change things; a viewer only reads.
WRITE_ROLES = (Membership.Role.ADMIN, Membership.Role.TECHNICIAN)


class AuditEvent(models.Model):
    """One line of the audit log: who did what to what, from where, when.

    Written by `cpo.audit.audit_record` (logins through auth signals, state changes from the
    services, inside their transactions so a rolled-back change leaves no line). Read-only
    in Django admin, for superusers. `username` and `target` are copied as text so a line
    still says who and what after the user or the station is gone.
    """

    class Action(models.TextChoices):
        LOGIN = "login", "Logged in"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOGIN_LOCKED = "login_locked", "Logins locked (too many failures)"
        LOGOUT = "logout", "Logged out"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        CPO_CREATED = "cpo_created", "CPO created"
        MEMBER_SET = "member_set", "Member added or role changed"
        USER_CREATED = "user_created", "User created"
        STATION_CLAIMED = "station_claimed", "Station claimed"
        STATION_CLAIM_REFUSED = "station_claim_refused", _("Station claim refused")
        STATION_ASSIGNED = "station_assigned", "Station CPO changed"
        STATION_SETTINGS_CHANGED = "station_settings_changed", "Station settings changed"
        COMMAND_REQUESTED = "command_requested", "Command requested"
        STATION_PASSWORD_ISSUED = "station_password_issued", "Charger password issued"
        MEMBER_INVITED = "member_invited", _("Member invited")
        INVITATION_ACCEPTED = "invitation_accepted", _("Invitation accepted")
        MEMBER_ROLE_CHANGED = "member_role_changed", _("Member's role changed")
        MEMBER_REMOVED = "member_removed", _("Member removed")
        LOGIN_UNLOCKED = "login_unlocked", _("Logins unlocked")
        ID_TAGS_CHANGED = "id_tags_changed", _("ID tags changed")
        CPO_SETTINGS_CHANGED = "cpo_settings_changed", _("CPO settings changed")

    time = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    target = models.CharField(max_length=200, blank=True)
    cpo = models.ForeignKey(Cpo, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    details = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        verbose_name = "audit event"
        indexes = [
            models.Index(fields=["action", "time"], name="auditevent_action_time"),
        ]

    def __str__(self) -> str:
        who = self.username or "system"
        return f"{self.time:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.target}".rstrip()
