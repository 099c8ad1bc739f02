from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower


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


class Cpo(models.Model):
    """A charge point operator: the organisation that owns stations."""

    name = models.CharField(max_length=100)
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
