from django.urls import path

from alerts import uptime_views, views

app_name = "alerts"

urlpatterns = [
    path("alerts/", views.alert_list, name="list"),
    path("alerts/<int:alert_pk>/acknowledge/", views.alert_acknowledge_view, name="acknowledge"),
    path("uptime/", uptime_views.uptime_page, name="uptime"),
    path("uptime/maintenance/", uptime_views.maintenance_add, name="maintenance_add"),
    path("alerts/settings/", views.settings_index, name="settings_index"),
    path("alerts/settings/<int:cpo_pk>/", views.alert_settings, name="settings"),
    path("alerts/settings/<int:cpo_pk>/rules/", views.rules_save, name="rules"),
    path("alerts/settings/<int:cpo_pk>/recipients/", views.recipients_save, name="recipients"),
    path("alerts/settings/<int:cpo_pk>/webhooks/", views.webhook_add_view, name="webhook_add"),
    path(
        "alerts/settings/<int:cpo_pk>/webhooks/<int:webhook_pk>/delete/",
        views.webhook_delete_view,
        name="webhook_delete",
    ),
]
