from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

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
    path("", include("alerts.urls")),
    path("", include("cpo.urls")),
    path("", include("stations.urls")),
    # Static files are WhiteNoise's (a middleware: see settings.py).
]

# Error pages inside the panel layout (virta/errors.py); 500 is Django's view with
# templates/500.html, which needs neither the database nor a context processor.
handler400 = "virta.errors.bad_request"
handler403 = "virta.errors.permission_denied"
handler404 = "virta.errors.page_not_found"
