from django.contrib import admin

from alerts.models import Alert, AlertRule, Delivery, Notification, Webhook


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("cpo", "kind", "enabled", "delay_seconds")
    list_filter = ("kind", "enabled")


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("station", "kind", "state", "detail", "opened_at", "resolved_at")
    list_filter = ("state", "kind")
    search_fields = ("station__cbid", "detail")
    raw_id_fields = ("station", "connector", "acknowledged_by")


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ("cpo", "url", "enabled", "last_success_at", "failing_since", "last_error")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("cpo", "kind", "change", "created_at", "dispatched_at", "subject")
    raw_id_fields = ("alerts",)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("notification", "webhook", "email", "state", "attempts", "next_attempt_at")
    list_filter = ("state",)
    raw_id_fields = ("notification",)
