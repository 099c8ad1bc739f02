from django.urls import path

from cpo import views

app_name = "cpo"

urlpatterns = [
    path("cpo/switch/", views.cpo_switch, name="switch"),
    path("team/", views.team_index, name="team_index"),
    path("team/<int:cpo_pk>/", views.team, name="team"),
    path("team/<int:cpo_pk>/invite/", views.member_invite_view, name="invite"),
    path(
        "team/<int:cpo_pk>/members/<int:membership_pk>/role/",
        views.member_role,
        name="member_role",
    ),
    path(
        "team/<int:cpo_pk>/members/<int:membership_pk>/remove/",
        views.member_remove_view,
        name="member_remove",
    ),
    path(
        "team/<int:cpo_pk>/members/<int:membership_pk>/resend/",
        views.member_resend,
        name="member_resend",
    ),
    path("team/<int:cpo_pk>/audit/", views.audit_log, name="audit_log"),
    path("team/<int:cpo_pk>/settings/", views.cpo_settings, name="settings"),
    # The invitation link: a one-time token, not a CPO's object.
    path(
        "accounts/invitation/<uidb64>/<token>/",
        views.InvitationAcceptView.as_view(),
        name="invitation",
    ),
]
