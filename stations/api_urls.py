from django.urls import path

from stations import api

app_name = "api"

urlpatterns = [
    path("stations/", api.station_list, name="station_list"),
    path("stations/<uuid:public_id>/", api.station_detail, name="station_detail"),
    path("stations/<int:pk>/commands/", api.station_commands, name="station_commands"),
    path(
        "stations/<int:pk>/commands/<int:command_pk>/",
        api.station_command_detail,
        name="station_command_detail",
    ),
]
