"""Django admin for CPOs and their members."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count

from cpo.models import Cpo, Membership


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
