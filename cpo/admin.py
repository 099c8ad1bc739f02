"""Django admin for CPOs, their members and the audit log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cpo.models import AuditEvent, Cpo, Membership
from cpo.throttle import login_locked_for, login_unlock
from cpo.views import ThrottledAdminAuthenticationForm

# The admin's login page is a password prompt too: the same brute-force protection.
admin.site.login_form = ThrottledAdminAuthenticationForm


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)


@admin.register(Cpo)
class CpoAdmin(admin.ModelAdmin):
    list_display = ("name", "member_count", "station_count", "created_at")
    search_fields = ("name",)
    inlines = (MembershipInline,)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _members=Count("memberships", distinct=True),
                _stations=Count("stations", distinct=True),
            )
        )

    @admin.display(description="members", ordering="_members")
    def member_count(self, cpo: Cpo) -> int:
        return cpo._members

    @admin.display(description="stations", ordering="_stations")
    def station_count(self, cpo: Cpo) -> int:
        return cpo._stations


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "cpo", "role", "created_at")
    list_filter = ("role", "cpo")
    search_fields = ("user__username", "cpo__name")
    list_select_related = ("user", "cpo")
    autocomplete_fields = ("user", "cpo")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log: superusers read it; nobody adds, edits or deletes lines here."""

    list_display = ("time", "username", "action", "target", "cpo", "remote_addr")
    list_filter = ("action", ("cpo", admin.RelatedOnlyFieldListFilter), "time")
    search_fields = ("username", "target", "remote_addr")
    date_hierarchy = "time"
    list_select_related = ("cpo",)
    fields = ("time", "user", "username", "action", "target", "cpo", "details", "remote_addr")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


User = get_user_model()


class PanelUserAdmin(UserAdmin):
    """Django's user admin, plus the panel's login lock: see it, lift it."""

    list_display = (*UserAdmin.list_display, "login_locked")
    actions = ("unlock_logins",)

    @admin.display(description=gettext_lazy("login locked"), boolean=True)
    def login_locked(self, user) -> bool:
        return bool(login_locked_for(username=user.get_username(), request=None))

    @admin.action(description=gettext_lazy("Unlock panel logins"), permissions=["unlock"])
    def unlock_logins(self, request, queryset) -> None:
        unlocked = [
            user.get_username()
            for user in queryset
            if login_unlock(username=user.get_username(), by=request.user)
        ]
        if unlocked:
            text = _("Unlocked: %(users)s.") % {"users": ", ".join(unlocked)}
            self.message_user(request, text, messages.SUCCESS)
        else:
            self.message_user(request, _("None of them was locked."), messages.INFO)

    def has_unlock_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, PanelUserAdmin)
