"""Django admin for system administrators: the pool, stations, the assignment audit trail.

A station's CPO is read-only here: it changes only through the "Assign to CPO…" action,
which goes through station_assign (audit trail, consumer refresh).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from cpo.models import Cpo
from stations.models import (
    ConnectionAttempt,
    Connector,
    IdTag,
    Station,
    StationAssignment,
    Transaction,
)
from stations.services.claiming import station_assign
from stations.services.id_tag_registry import id_tag_values_check

# What the charger and the gateway set: never edited by hand.
OCPP_FIELDS = (
    "ocpp_version",
    "registration_status",
    "vendor",
    "model",
    "serial_number",
    "charge_box_serial_number",
    "firmware_version",
    "iccid",
    "imsi",
    "meter_type",
    "meter_serial_number",
    "boot_reason",
    "last_boot_at",
    "status",
    "error_code",
    "status_info",
    "status_updated_at",
    "connected",
    "connected_at",
    "disconnected_at",
    "first_connected_at",
    "last_seen",
    "channel_name",
    "created_at",
    "updated_at",
)


class PoolFilter(admin.SimpleListFilter):
    title = "CPO"
    parameter_name = "cpo"

    def lookups(self, request, model_admin):
        return [("pool", "No CPO (pool)"), *((str(c.pk), c.name) for c in Cpo.objects.all())]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "pool":
            return queryset.in_pool()
        if value:
            return queryset.filter(cpo_id=value)
        return queryset


class ConnectorInline(admin.TabularInline):
    model = Connector
    extra = 0
    fields = (
        "evse_id",
        "connector_id",
        "status",
        "error_code",
        "info",
        "vendor_error_code",
        "status_timestamp",
        "plug_type",
        "max_power_kw",
    )
    readonly_fields = (
        "evse_id",
        "connector_id",
        "status",
        "error_code",
        "info",
        "vendor_error_code",
        "status_timestamp",
    )

    def has_add_permission(self, request, obj=None):
        # Connectors exist because the charger reported them.
        return False


class StationAssignmentInline(admin.TabularInline):
    model = StationAssignment
    extra = 0
    can_delete = False
    fields = ("created_at", "from_cpo_name", "to_cpo_name", "by_username", "source")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AssignCpoForm(forms.Form):
    cpo = forms.ModelChoiceField(label="CPO", queryset=Cpo.objects.all())


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    list_display = (
        "cbid",
        "vendor",
        "model",
        "serial_number",
        "firmware_version",
        "first_connected_at",
        "last_seen",
        "online",
        "cpo",
    )
    list_filter = (PoolFilter, "protocol", "ocpp_version", "connected", "registration_status")
    search_fields = ("cbid", "serial_number", "charge_box_serial_number", "vendor")
    list_select_related = ("cpo",)
    readonly_fields = ("cpo", *OCPP_FIELDS)
    inlines = (ConnectorInline, StationAssignmentInline)
    actions = ("assign_to_cpo",)
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("cbid", "name", "protocol", "cpo")}),
        (
            "Connection",
            {
                "fields": (
                    "connected",
                    "connected_at",
                    "disconnected_at",
                    "first_connected_at",
                    "last_seen",
                    "channel_name",
                    "registration_status",
                    "ocpp_version",
                )
            },
        ),
        (
            "Boot (what the charger told)",
            {
                "fields": (
                    "vendor",
                    "model",
                    "serial_number",
                    "charge_box_serial_number",
                    "firmware_version",
                    "iccid",
                    "imsi",
                    "meter_type",
                    "meter_serial_number",
                    "boot_reason",
                    "last_boot_at",
                )
            },
        ),
        ("Status", {"fields": ("status", "error_code", "status_info", "status_updated_at")}),
        (
            "Security",
            {"fields": ("security_profile", "lenient_validation"), "classes": ("collapse",)},
        ),
        (
            "Settings",
            {
                "fields": (
                    "free_usage",
                    "reservation_enabled",
                    "visible",
                    "street",
                    "postal_code",
                    "city",
                    "country",
                    "latitude",
                    "longitude",
                ),
                "classes": ("collapse",),
            },
        ),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            # Added by hand, a station starts in the pool: its CPO comes through the action.
            return ("cpo", *OCPP_FIELDS)
        return ("cbid", *self.readonly_fields)

    @admin.display(boolean=True, description="online", ordering="connected")
    def online(self, station: Station) -> bool:
        return station.connected

    @admin.action(description="Assign to CPO…")
    def assign_to_cpo(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Intermediate page: choose the CPO, then assign each station through station_assign."""
        if not request.user.is_superuser:
            raise PermissionDenied
        form = AssignCpoForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            cpo = form.cleaned_data["cpo"]
            moved = 0
            for station in queryset:
                before = station.cpo_id
                station = station_assign(station=station, cpo=cpo, by=request.user, source="admin")
                moved += before != station.cpo_id
            unchanged = queryset.count() - moved
            text = f"{moved} station(s) assigned to {cpo.name}."
            if unchanged:
                text += f" {unchanged} already there."
            self.message_user(request, text, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Assign to CPO",
            "stations": queryset,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/stations/station/assign_cpo.html", context)


@admin.register(StationAssignment)
class StationAssignmentAdmin(admin.ModelAdmin):
    """The audit trail: read-only."""

    list_display = (
        "created_at",
        "station",
        "from_cpo_name",
        "to_cpo_name",
        "by_username",
        "source",
    )
    list_filter = ("source",)
    search_fields = ("station__cbid", "from_cpo_name", "to_cpo_name", "by_username")
    list_select_related = ("station",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ConnectionAttempt)
class ConnectionAttemptAdmin(admin.ModelAdmin):
    """Refused handshakes: read-only."""

    list_display = ("created_at", "cbid", "remote_addr", "reason", "count", "last_at", "detail")
    list_filter = ("reason",)
    search_fields = ("cbid", "remote_addr")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class IdTagAdminForm(forms.ModelForm):
    """The panel's rules for a tag's values (`id_tag_values_check`), in Django admin too."""

    class Meta:
        model = IdTag
        fields = [
            "cpo",
            "tag",
            "label",
            "status",
            "token_type",
            "expiry_date",
            "parent_id_tag",
        ]

    def clean(self):
        cleaned = super().clean()
        cpo = cleaned.get("cpo")
        if cpo is not None and cleaned.get("tag"):
            values = {name: cleaned.get(name, "") for name in self.Meta.fields if name != "cpo"}
            existing = self.instance if self.instance.pk else None
            errors = id_tag_values_check(cpo=cpo, values=values, existing=existing)
            for name, messages_ in errors.items():
                for message in messages_:
                    self.add_error(name if name in self.fields else None, message)
        return cleaned


@admin.register(IdTag)
class IdTagAdmin(admin.ModelAdmin):
    form = IdTagAdminForm
    list_display = ("tag", "label", "cpo", "status", "token_type", "expiry_date", "last_used_at")
    list_filter = ("status", "token_type", "cpo")
    search_fields = ("tag", "label", "parent_id_tag")
    readonly_fields = ("created_at", "last_used_at")
    list_select_related = ("cpo",)


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    """Sessions as the chargers reported them: read-only (they are evidence for billing)."""

    list_display = (
        "__str__",
        "station",
        "connector",
        "id_tag",
        "id_tag_status",
        "state",
        "start_time",
        "stop_time",
        "energy_wh",
        "stop_reason",
    )
    list_filter = ("state", "id_tag_status", "incomplete", "superseded", "station__cpo")
    search_fields = ("id_tag", "charger_transaction_id", "station__cbid")
    list_select_related = ("station", "connector")
    date_hierarchy = "start_time"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
