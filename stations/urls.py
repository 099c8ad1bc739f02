from django.urls import path

from stations import tag_views, views, views_sessions

app_name = "stations"

urlpatterns = [
    path("", views_sessions.home, name="home"),
    path("sessions/", views_sessions.session_list, name="sessions"),
    path("sessions/export.csv", views_sessions.session_export, name="sessions_export"),
    path("sessions/<int:transaction_pk>/", views_sessions.session_detail, name="session"),
    path("stations/", views.station_list, name="list"),
    path("stations/add/", views.station_add, name="add"),
    path("stations/connect/", views.connect_charger, name="connect"),
    path("stations/refused/", views.connection_attempts, name="attempts"),
    path("stations/<int:pk>/", views.station_detail, name="detail"),
    path("stations/<int:pk>/cpo/", views.station_change_cpo, name="change_cpo"),
    path("stations/<int:pk>/settings/", views.station_settings, name="settings"),
    path("stations/<int:pk>/commands/", views.station_command, name="command"),
    path("stations/<int:pk>/live/", views.station_live, name="live"),
    path("stations/<int:pk>/password/", views.station_password, name="password"),
    path("stations/<int:pk>/log/", views.station_log_page, name="log"),
    path(
        "stations/<int:pk>/transactions/<int:transaction_pk>/signed/",
        views.transaction_signed,
        name="transaction_signed",
    ),
    path("tags/", tag_views.id_tags_index, name="id_tags_index"),
    path("tags/<int:cpo_pk>/", tag_views.id_tags, name="id_tags"),
    path("tags/<int:cpo_pk>/add/", tag_views.id_tag_add, name="id_tag_add"),
    path("tags/<int:cpo_pk>/import/", tag_views.id_tags_import_view, name="id_tags_import"),
    path("tags/<int:cpo_pk>/export/", tag_views.id_tags_export, name="id_tags_export"),
    path("tags/<int:cpo_pk>/settings/", tag_views.id_tags_settings, name="id_tags_settings"),
    path("tags/<int:cpo_pk>/sync/", tag_views.id_tags_sync, name="id_tags_sync"),
    path("tags/<int:cpo_pk>/<int:tag_pk>/", tag_views.id_tag_edit, name="id_tag_edit"),
    path("tags/<int:cpo_pk>/<int:tag_pk>/status/", tag_views.id_tag_status, name="id_tag_status"),
    path(
        "tags/<int:cpo_pk>/<int:tag_pk>/delete/",
        tag_views.id_tag_delete_view,
        name="id_tag_delete",
    ),
]
