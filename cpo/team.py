"""A CPO's team: its admins invite people by e-mail, change their roles, remove them.

- Only the CPO's admins manage its members; superusers may for any CPO. Anyone else gets
  PermissionDenied (the views check first: another CPO's team is a 404 there).
- A CPO keeps at least one admin: the last admin can neither leave nor step down (make
  someone else admin first). Changes of one CPO's members are serialised on its row, so
  two admins demoting each other at once cannot leave it with none.
- An invitation creates the user (username = the e-mail address) without a usable
  password, gives them the role, and e-mails them a link to set their password. The link
  is a password-reset token of its own kind: it stops working once the password is set
  (the token covers the password hash) or after PASSWORD_RESET_TIMEOUT. Someone who
  already has an account with that address is added at once and told by e-mail.
- Every change writes an audit line in its transaction.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from cpo.audit import Action, audit_record
from cpo.models import Cpo, CpoQuerySet, Membership
from cpo.services import CpoError

logger = logging.getLogger(__name__)

Role = Membership.Role
USERNAME_LIMIT = 150


class InvitationTokenGenerator(PasswordResetTokenGenerator):
    # Its own salt: an invitation token is no password-reset token, nor the reverse.
    key_salt = "cpo.team.InvitationTokenGenerator"


invitation_tokens = InvitationTokenGenerator()


def cpos_managed_by(user: AbstractBaseUser | AnonymousUser) -> CpoQuerySet:
    """CPOs whose members `user` manages: those they are admin of (superusers: all)."""
    return Cpo.objects.for_user(user, roles=[Role.ADMIN])


def user_manages_cpo(*, user: AbstractBaseUser | AnonymousUser, cpo: Cpo) -> bool:
    return cpos_managed_by(user).filter(pk=cpo.pk).exists()


def team_members(*, cpo: Cpo):
    """The CPO's memberships with their users, admins first."""
    order = {Role.ADMIN: 0, Role.TECHNICIAN: 1, Role.VIEWER: 2}
    members = list(cpo.memberships.select_related("user"))
    return sorted(members, key=lambda m: (order.get(m.role, 9), m.user.get_username().lower()))


def invitation_pending(membership: Membership) -> bool:
    """The member was invited and has not set a password yet."""
    return not membership.user.has_usable_password()


def _require_manager(*, user: AbstractBaseUser, cpo: Cpo) -> None:
    if not user_manages_cpo(user=user, cpo=cpo):
        raise PermissionDenied(_("Only the CPO's admins manage its members."))


def _require_role(role: str) -> None:
    if role not in Role.values:
        raise CpoError(_("Choose a role: admin, technician or viewer."))


def _lock(cpo: Cpo) -> Cpo:
    """Serialise the changes of one CPO's members (call inside a transaction)."""
    return Cpo.objects.select_for_update().get(pk=cpo.pk)


def _last_admin(membership: Membership) -> bool:
    if membership.role != Role.ADMIN:
        return False
    others = Membership.objects.filter(cpo_id=membership.cpo_id, role=Role.ADMIN)
    return not others.exclude(pk=membership.pk).exists()


def member_invite(*, cpo: Cpo, email: str, role: str, by: AbstractBaseUser) -> Membership:
    """Give the person with this e-mail address `role` in `cpo`, creating their account.

    A new account has no usable password until the person sets one from the invitation
    link (`member_invitation_send`). Raises PermissionDenied, CpoError.
    """
    _require_manager(user=by, cpo=cpo)
    _require_role(role)
    email = get_user_model().objects.normalize_email((email or "").strip())
    try:
        validate_email(email)
    except ValidationError:
        raise CpoError(_("Enter a valid e-mail address."))
    if len(email) > USERNAME_LIMIT:
        raise CpoError(_("An e-mail address of at most 150 characters, please."))
    User = get_user_model()
    with transaction.atomic():
        cpo = _lock(cpo)
        found = list(User.objects.filter(Q(email__iexact=email) | Q(username__iexact=email))[:2])
        if len(found) > 1:
            raise CpoError(
                _(
                    "Several accounts use this address: ask a system administrator to add "
                    "the member."
                )
            )
        user = found[0] if found else None
        new_user = user is None
        if new_user:
            user = User(username=email.lower(), email=email)
            user.set_unusable_password()
            user.save()
        elif Membership.objects.filter(user=user, cpo=cpo).exists():
            raise CpoError(
                _("%(user)s is already a member of %(cpo)s.")
                % {"user": user.get_username(), "cpo": cpo.name}
            )
        membership = Membership.objects.create(user=user, cpo=cpo, role=role)
        audit_record(
            action=Action.MEMBER_INVITED,
            user=by,
            cpo=cpo,
            target=user.get_username(),
            details={"role": role, "email": email, "new_user": new_user},
        )
    return membership


def invitation_link(*, user: AbstractBaseUser, site_url: str) -> str:
    """The one-time link where an invited user sets their password."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("cpo:invitation", args=[uid, invitation_tokens.make_token(user)])
    return site_url.rstrip("/") + path


def member_invitation_send(*, membership: Membership, by: AbstractBaseUser, site_url: str) -> None:
    """E-mail the member their invitation: the set-password link while they have no
    password, otherwise word that they were added. `site_url` is the panel's address
    ("https://csms.example.com"). Mail errors (SMTPException, OSError) propagate: the
    membership stands, the caller says the e-mail did not go.
    """
    user = membership.user
    if not user.email:
        raise CpoError(_("%(user)s has no e-mail address.") % {"user": user.get_username()})
    pending = invitation_pending(membership)
    context = {
        "cpo": membership.cpo.name,
        "role": membership.get_role_display(),
        "inviter": by.get_full_name() or by.get_username(),
        "username": user.get_username(),
        "link": invitation_link(user=user, site_url=site_url) if pending else "",
        "login_url": site_url.rstrip("/") + reverse("login"),
        "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
    }
    subject = render_to_string("cpo/email/invitation_subject.txt", context)
    body = render_to_string("cpo/email/invitation_body.txt", context)
    send_mail(" ".join(subject.split()), body, None, [user.email])


def member_role_change(*, membership: Membership, role: str, by: AbstractBaseUser) -> bool:
    """Give a member another role; False when it is the role they have.

    Refused (CpoError) when it would leave the CPO without an admin.
    """
    _require_manager(user=by, cpo=membership.cpo)
    _require_role(role)
    with transaction.atomic():
        _lock(membership.cpo)
        current = Membership.objects.select_related("user").get(pk=membership.pk)
        if current.role == role:
            return False
        if role != Role.ADMIN and _last_admin(current):
            raise CpoError(
                _("%(user)s is the last admin of %(cpo)s: make another member admin first.")
                % {"user": current.user.get_username(), "cpo": membership.cpo.name}
            )
        old_role = current.role
        current.role = role
        current.save(update_fields=["role"])
        audit_record(
            action=Action.MEMBER_ROLE_CHANGED,
            user=by,
            cpo=membership.cpo_id,
            target=current.user.get_username(),
            details={"from": old_role, "to": role},
        )
    membership.role = role
    return True


def member_remove(*, membership: Membership, by: AbstractBaseUser) -> None:
    """Take a member out of the CPO. Refused (CpoError) for its last admin.

    An invitation nobody accepted is withdrawn with it: the account it created goes too
    (so the link dies), unless it belongs to another CPO as well.
    """
    _require_manager(user=by, cpo=membership.cpo)
    with transaction.atomic():
        _lock(membership.cpo)
        current = Membership.objects.select_related("user").filter(pk=membership.pk).first()
        if current is None:
            return  # Removed meanwhile: nothing left to do.
        user = current.user
        if _last_admin(current):
            raise CpoError(
                _("%(user)s is the last admin of %(cpo)s: make another member admin first.")
                % {"user": user.get_username(), "cpo": membership.cpo.name}
            )
        current.delete()
        withdrawn = (
            not user.has_usable_password()
            and user.last_login is None
            and not (user.is_staff or user.is_superuser)
            and not user.memberships.exists()
        )
        audit_record(
            action=Action.MEMBER_REMOVED,
            user=by,
            cpo=membership.cpo_id,
            target=user.get_username(),
            details={"role": current.role, "invitation_withdrawn": withdrawn},
        )
        if withdrawn:
            user.delete()


def invitation_accept_record(*, user: AbstractBaseUser) -> None:
    """The invited user set their password: a line in each of their CPOs' logs."""
    for cpo_id in user.memberships.values_list("cpo_id", flat=True):
        audit_record(action=Action.INVITATION_ACCEPTED, user=user, cpo=cpo_id)
