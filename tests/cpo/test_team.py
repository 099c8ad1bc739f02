"""The CPO's team in the panel: invite by e-mail, the one-time link, roles, removal."""

from __future__ import annotations

import re
import smtplib

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.urls import reverse

from cpo import team as team_module
from cpo.models import AuditEvent, Membership
from cpo.team import member_invite, member_remove, member_role_change
from tests.factories import make_cpo, make_member, make_user

pytestmark = pytest.mark.django_db

User = get_user_model()
Action = AuditEvent.Action
NEW_PASSWORD = "a-long-new-passphrase-42"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # Many users and password checks: a fast hasher (set before the cast is created).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def team_url(cpo) -> str:
    return reverse("cpo:team", args=[cpo.pk])


def invite(client, cpo, email: str, role: str = "technician"):
    return client.post(reverse("cpo:invite", args=[cpo.pk]), {"email": email, "role": role})


def link_in(message) -> str:
    """The path of the set-password link in an invitation e-mail."""
    match = re.search(r"https?://[^/\s]+(/accounts/invitation/\S+/)", message.body)
    assert match, f"no invitation link in:\n{message.body}"
    return match[1]


def set_password(client, link: str):
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200
    return client.post(
        form_page.request["PATH_INFO"],
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# ---- inviting -------------------------------------------------------------------------------


def test_an_admin_invites_a_new_member_by_e_mail(client, alice, cpo_a, mailoutbox):
    client.force_login(alice)

    response = invite(client, cpo_a, "Dave@Example.com", "technician")

    assert response.status_code == 302 and response["Location"] == team_url(cpo_a)
    dave = User.objects.get(email__iexact="dave@example.com")
    assert dave.get_username() == "dave@example.com"
    assert not dave.has_usable_password()
    assert dave.memberships.get().role == Membership.Role.TECHNICIAN
    [mail] = mailoutbox
    assert mail.to == ["Dave@example.com"]
    assert "CPO A" in mail.subject
    assert "alice" in mail.body and "Technician" in mail.body
    assert link_in(mail).startswith("/accounts/invitation/")
    line = AuditEvent.objects.get(action=Action.MEMBER_INVITED)
    assert (line.username, line.cpo, line.target) == ("alice", cpo_a, "dave@example.com")
    assert line.details == {"role": "technician", "email": "Dave@example.com", "new_user": True}
    assert line.remote_addr == "127.0.0.1"


def test_the_invited_member_sets_a_password_from_the_link_and_is_logged_in(
    client, alice, cpo_a, mailoutbox
):
    client.force_login(alice)
    invite(client, cpo_a, "dave@example.com")
    client.logout()

    response = set_password(client, link_in(mailoutbox[0]))

    assert response.status_code == 302
    assert response["Location"] == reverse("stations:list")
    dave = User.objects.get(username="dave@example.com")
    assert dave.check_password(NEW_PASSWORD)
    assert int(client.session[SESSION_KEY]) == dave.pk
    accepted = AuditEvent.objects.get(action=Action.INVITATION_ACCEPTED)
    assert (accepted.username, accepted.cpo) == ("dave@example.com", cpo_a)


def test_the_link_works_once(client, alice, cpo_a, mailoutbox):
    client.force_login(alice)
    invite(client, cpo_a, "dave@example.com")
    client.logout()
    link = link_in(mailoutbox[0])
    set_password(client, link)
    client.logout()

    again = client.get(link, follow=True)

    assert again.status_code == 404
    assert "This link does not work" in again.content.decode()
    assert User.objects.get(username="dave@example.com").check_password(NEW_PASSWORD)


def test_a_tampered_link_is_a_404(client, alice, cpo_a, mailoutbox):
    client.force_login(alice)
    invite(client, cpo_a, "dave@example.com")
    client.logout()
    link = link_in(mailoutbox[0])
    tampered = link[:-3] + ("x" if link[-3] != "x" else "y") + link[-2:]

    assert client.get(tampered, follow=True).status_code == 404
    assert client.get("/accounts/invitation/Zm9v/nothing/").status_code == 404


def test_an_invitation_link_is_no_password_reset_token(client, alice, cpo_a):
    from django.contrib.auth.tokens import default_token_generator

    dave = member_invite(cpo=cpo_a, email="dave@example.com", role="viewer", by=alice).user
    uid = re.search(r"invitation/([^/]+)/", team_module.invitation_link(user=dave, site_url=""))[1]

    forged = client.get(f"/accounts/invitation/{uid}/{default_token_generator.make_token(dave)}/")

    assert forged.status_code == 404


def test_someone_with_an_account_is_added_at_once_and_told(client, alice, carol, cpo_a, mailoutbox):
    client.force_login(alice)

    response = invite(client, cpo_a, "CAROL@example.com", "viewer")

    assert response.status_code == 302
    assert carol.memberships.get(cpo=cpo_a).role == Membership.Role.VIEWER
    assert User.objects.filter(email__iexact="carol@example.com").count() == 1
    [mail] = mailoutbox
    assert "/accounts/invitation/" not in mail.body
    assert "/accounts/login/" in mail.body and "carol" in mail.body
    assert carol.check_password("correct-horse-battery")  # untouched


def test_inviting_a_member_again_is_refused(client, alice, bob, cpo_a, mailoutbox):
    client.force_login(alice)

    response = invite(client, cpo_a, "bob@example.com", "admin")

    assert response.status_code == 400
    assert "bob is already a member of CPO A" in response.content.decode()
    assert bob.memberships.get().role == Membership.Role.VIEWER
    assert mailoutbox == []


@pytest.mark.parametrize(
    ("email", "role", "error"),
    [
        ("not-an-address", "viewer", "Enter a valid email address"),
        ("", "viewer", "This field is required"),
        ("eve@example.com", "owner", "Select a valid choice"),
    ],
)
def test_bad_invitations_are_refused_with_the_reason(client, alice, cpo_a, email, role, error):
    client.force_login(alice)
    users = User.objects.count()

    response = invite(client, cpo_a, email, role)

    assert response.status_code == 400
    assert error in response.content.decode()
    assert User.objects.count() == users


def test_a_mail_server_failure_keeps_the_member_and_says_so(
    client, alice, cpo_a, mailoutbox, monkeypatch
):
    def refuse(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr(team_module, "send_mail", refuse)
    client.force_login(alice)

    response = invite(client, cpo_a, "dave@example.com")

    assert response.status_code == 302
    page = client.get(response["Location"])
    assert "the e-mail could not be sent" in page.content.decode()
    assert "Resend invitation" in page.content.decode()
    assert Membership.objects.filter(user__username="dave@example.com", cpo=cpo_a).exists()


def test_resend_sends_a_fresh_working_link(client, alice, cpo_a, mailoutbox):
    client.force_login(alice)
    invite(client, cpo_a, "dave@example.com")
    membership = Membership.objects.get(user__username="dave@example.com")

    response = client.post(reverse("cpo:member_resend", args=[cpo_a.pk, membership.pk]))

    assert response.status_code == 302
    assert len(mailoutbox) == 2
    client.logout()
    assert set_password(client, link_in(mailoutbox[1])).status_code == 302


def test_the_team_page_shows_who_has_not_set_a_password(client, alice, bob, cpo_a):
    member_invite(cpo=cpo_a, email="dave@example.com", role="viewer", by=alice)
    client.force_login(alice)

    html = client.get(team_url(cpo_a)).content.decode()

    assert "alice" in html and "bob" in html and "dave@example.com" in html
    assert html.count("Invited, no password yet") == 1


# ---- roles and removal ----------------------------------------------------------------------


def test_an_admin_changes_a_members_role(client, alice, bob, cpo_a):
    client.force_login(alice)
    membership = bob.memberships.get()

    response = client.post(
        reverse("cpo:member_role", args=[cpo_a.pk, membership.pk]),
        {f"m{membership.pk}-role": "technician"},
    )

    assert response.status_code == 302
    assert bob.memberships.get().role == Membership.Role.TECHNICIAN
    line = AuditEvent.objects.get(action=Action.MEMBER_ROLE_CHANGED)
    assert (line.username, line.target, line.cpo) == ("alice", "bob", cpo_a)
    assert line.details == {"from": "viewer", "to": "technician"}


def test_the_last_admin_cannot_step_down(client, alice, bob, cpo_a):
    client.force_login(alice)
    membership = alice.memberships.get()

    response = client.post(
        reverse("cpo:member_role", args=[cpo_a.pk, membership.pk]),
        {f"m{membership.pk}-role": "viewer"},
        follow=True,
    )

    assert "alice is the last admin of CPO A" in response.content.decode()
    assert alice.memberships.get().role == Membership.Role.ADMIN
    assert not AuditEvent.objects.filter(action=Action.MEMBER_ROLE_CHANGED).exists()


def test_the_last_admin_cannot_leave(client, alice, bob, cpo_a):
    client.force_login(alice)
    membership = alice.memberships.get()

    response = client.post(
        reverse("cpo:member_remove", args=[cpo_a.pk, membership.pk]), follow=True
    )

    assert "alice is the last admin of CPO A" in response.content.decode()
    assert alice.memberships.filter(cpo=cpo_a).exists()


def test_an_admin_may_leave_when_another_admin_remains(client, alice, bob, cpo_a):
    member_role_change(membership=bob.memberships.get(), role="admin", by=alice)
    client.force_login(alice)

    response = client.post(
        reverse("cpo:member_remove", args=[cpo_a.pk, alice.memberships.get().pk])
    )

    assert response.status_code == 302 and response["Location"] == reverse("stations:list")
    assert not alice.memberships.exists()


def test_no_two_admins_can_demote_each_other_into_none(alice, bob, cpo_a):
    member_role_change(membership=bob.memberships.get(), role="admin", by=alice)
    member_role_change(membership=alice.memberships.get(), role="viewer", by=bob)

    with pytest.raises(team_module.CpoError):
        member_role_change(membership=bob.memberships.get(), role="viewer", by=bob)

    assert list(
        cpo_a.memberships.filter(role="admin").values_list("user__username", flat=True)
    ) == ["bob"]


def test_the_remove_page_asks_first(client, alice, bob, cpo_a):
    client.force_login(alice)

    html = client.get(reverse("cpo:member_remove", args=[cpo_a.pk, bob.memberships.get().pk]))

    assert (
        "bob (Viewer) will no longer see or change the stations of CPO A" in html.content.decode()
    )
    assert bob.memberships.exists()


def test_an_admin_removes_a_member(client, alice, bob, cpo_a):
    client.force_login(alice)

    response = client.post(reverse("cpo:member_remove", args=[cpo_a.pk, bob.memberships.get().pk]))

    assert response.status_code == 302 and response["Location"] == team_url(cpo_a)
    assert not bob.memberships.exists()
    assert User.objects.filter(pk=bob.pk).exists()  # an account with a password stays
    line = AuditEvent.objects.get(action=Action.MEMBER_REMOVED)
    assert (line.target, line.details) == ("bob", {"role": "viewer", "invitation_withdrawn": False})


def test_removing_an_invitee_withdraws_the_invitation(client, alice, cpo_a, mailoutbox):
    client.force_login(alice)
    invite(client, cpo_a, "dave@example.com")
    link = link_in(mailoutbox[0])
    membership = Membership.objects.get(user__username="dave@example.com")

    client.post(reverse("cpo:member_remove", args=[cpo_a.pk, membership.pk]))
    client.logout()

    assert not User.objects.filter(username="dave@example.com").exists()
    assert client.get(link, follow=True).status_code == 404


def test_an_invitee_of_two_cpos_keeps_the_account_when_one_removes_them(alice, cpo_a, carol):
    cpo_b = carol.memberships.get().cpo
    dave = member_invite(cpo=cpo_a, email="dave@example.com", role="viewer", by=alice).user
    member_invite(cpo=cpo_b, email="dave@example.com", role="viewer", by=carol)

    member_remove(membership=dave.memberships.get(cpo=cpo_a), by=alice)

    assert list(dave.memberships.values_list("cpo__name", flat=True)) == ["CPO B"]


def test_a_superuser_manages_any_cpo(client, root, carol, cpo_b, mailoutbox):
    client.force_login(root)

    assert client.get(team_url(cpo_b)).status_code == 200
    invite(client, cpo_b, "erin@example.com", "admin")
    erin = Membership.objects.get(user__username="erin@example.com", cpo=cpo_b)
    client.post(
        reverse("cpo:member_role", args=[cpo_b.pk, carol.memberships.get().pk]),
        {f"m{carol.memberships.get().pk}-role": "viewer"},
    )

    assert erin.role == Membership.Role.ADMIN
    assert carol.memberships.get().role == Membership.Role.VIEWER
    assert AuditEvent.objects.filter(cpo=cpo_b, username="root").count() == 2


def test_services_refuse_who_does_not_manage_the_cpo(bob, carol, cpo_a):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        member_invite(cpo=cpo_a, email="x@example.com", role="viewer", by=bob)
    with pytest.raises(PermissionDenied):
        member_remove(membership=bob.memberships.get(), by=carol)


# ---- who may: four ways --------------------------------------------------------------------

# (URL name, method, whether it names a member)
TEAM_URLS = [
    ("cpo:team", "get", False),
    ("cpo:audit_log", "get", False),
    ("cpo:invite", "post", False),
    ("cpo:member_role", "post", True),
    ("cpo:member_remove", "get", True),
    ("cpo:member_remove", "post", True),
    ("cpo:member_resend", "post", True),
]


def _url(name: str, cpo, membership) -> str:
    args = [cpo.pk, membership.pk] if name.startswith("cpo:member_") else [cpo.pk]
    return reverse(name, args=args)


@pytest.fixture
def invitee_a(alice, cpo_a) -> Membership:
    return member_invite(cpo=cpo_a, email="dave@example.com", role="viewer", by=alice)


@pytest.mark.parametrize(("name", "method", "_member"), TEAM_URLS)
def test_alice_may(client, alice, cpo_a, invitee_a, name, method, _member, mailoutbox):
    client.force_login(alice)
    data = {"email": "new@example.com", "role": "viewer", f"m{invitee_a.pk}-role": "technician"}

    response = getattr(client, method)(_url(name, cpo_a, invitee_a), data)

    assert response.status_code == (200 if method == "get" else 302)


@pytest.mark.parametrize(("name", "method", "_member"), TEAM_URLS)
def test_login_is_required(client, cpo_a, invitee_a, name, method, _member):
    response = getattr(client, method)(_url(name, cpo_a, invitee_a))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "method", "_member"), TEAM_URLS)
def test_another_cpo_gets_404(client, carol, cpo_a, invitee_a, name, method, _member):
    client.force_login(carol)
    before = list(Membership.objects.values_list("pk", "role"))

    response = getattr(client, method)(_url(name, cpo_a, invitee_a), {"role": "admin"})

    assert response.status_code == 404
    assert list(Membership.objects.values_list("pk", "role")) == before


@pytest.mark.parametrize(("name", "method", "_member"), TEAM_URLS)
def test_a_viewer_gets_403(client, bob, cpo_a, invitee_a, name, method, _member, mailoutbox):
    client.force_login(bob)
    before = list(Membership.objects.values_list("pk", "role"))

    data = {"email": "x@example.com", "role": "admin", f"m{invitee_a.pk}-role": "admin"}
    response = getattr(client, method)(_url(name, cpo_a, invitee_a), data)

    assert response.status_code == 403
    assert list(Membership.objects.values_list("pk", "role")) == before
    assert mailoutbox == []


def test_a_member_of_another_cpo_is_a_404_under_this_cpo(client, alice, carol, cpo_a):
    client.force_login(alice)
    carols = carol.memberships.get()

    response = client.post(reverse("cpo:member_remove", args=[cpo_a.pk, carols.pk]))

    assert response.status_code == 404
    assert Membership.objects.filter(pk=carols.pk).exists()


def test_the_team_index_goes_to_the_only_cpo(client, alice, cpo_a):
    client.force_login(alice)

    response = client.get(reverse("cpo:team_index"))

    assert response.status_code == 302 and response["Location"] == team_url(cpo_a)


def test_the_team_index_lists_several_cpos(client, alice, cpo_a):
    make_member(alice, make_cpo("CPO C"), Membership.Role.ADMIN)
    make_member(alice, make_cpo("CPO D"), Membership.Role.VIEWER)
    client.force_login(alice)

    html = client.get(reverse("cpo:team_index")).content.decode()
    # The page itself (the header's CPO switcher lists every CPO of hers).
    main = html.split("<main", 1)[1]

    assert "CPO A" in main and "CPO C" in main and "CPO D" not in main


def test_the_team_index_is_403_for_who_administers_nothing(client, bob):
    client.force_login(bob)

    assert client.get(reverse("cpo:team_index")).status_code == 403


def test_the_menu_offers_team_to_admins_only(client, alice, bob):
    team_link = f'href="{reverse("cpo:team_index")}"'
    client.force_login(alice)
    assert team_link in client.get(reverse("stations:list")).content.decode()
    client.force_login(bob)
    assert team_link not in client.get(reverse("stations:list")).content.decode()


def test_a_user_without_e_mail_cannot_be_resent_anything(client, alice, cpo_a, mailoutbox):
    frank = make_user("frank")
    frank.email = ""
    frank.set_unusable_password()
    frank.save()
    membership = make_member(frank, cpo_a, Membership.Role.VIEWER)
    client.force_login(alice)

    response = client.post(
        reverse("cpo:member_resend", args=[cpo_a.pk, membership.pk]), follow=True
    )

    assert response.status_code == 200
    assert "frank has no e-mail address" in response.content.decode()
    assert mailoutbox == []
