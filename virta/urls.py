from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.views import serve as staticfiles_serve
from django.urls import include, path, re_path

from cpo.views import ThrottledLoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("api/", include("stations.api_urls")),
    path("", include("stations.urls")),
    # The project serves its own (few, small) static files, with or without DEBUG: daphne
    # has no static handler and the panel must look right behind a plain TLS proxy too.
    re_path(
        r"^static/(?P<path>.*)$",
        staticfiles_serve,
        {"insecure": True},
    ),
]
