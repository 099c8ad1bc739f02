"""CPOs and their members: the rules shared by Django admin and the CLI."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cpo.audit import Action, audit_record
from cpo.models import Cpo, Membership, validate_time_zone


class CpoError(Exception):
    """A request the rules refuse; `message` is meant for the person who asked."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def cpo_get(*, name: str) -> Cpo:
    """The CPO with this name, whatever its case. Raises CpoError."""
    cpo = Cpo.objects.filter(name__iexact=name.strip()).first()
    if cpo is None:
        raise CpoError(f"No CPO named “{name.strip()}”.")
    return cpo


def cpo_create(*, name: str) -> Cpo:
    """Create a CPO. Names are trimmed and unique whatever their case. Raises CpoError."""
    name = name.strip()
    if not name:
        raise CpoError("A CPO needs a name.")
    if len(name) > Cpo._meta.get_field("name").max_length:
        raise CpoError("A CPO name has at most 100 characters.")
    try:
        with transaction.atomic():
            cpo = Cpo.objects.create(name=name)
            audit_record(action=Action.CPO_CREATED, cpo=cpo, target=name)
            return cpo
    except IntegrityError:
        raise CpoError(f"A CPO named “{name}” already exists.")


def cpo_member_add(
    *,
    cpo: Cpo,
    username: str,
    role: str,
    create_user: bool = False,
    password: str | None = None,
) -> Membership:
    """Give `username` the `role` in `cpo` (changing the role of an existing member).

    With `create_user`, a missing user is created with `password` (Django's password
    validators apply). Raises CpoError, also when it would leave the CPO without an admin.
    """
    if role not in Membership.Role.values:
        raise CpoError(f"Unknown role “{role}”: use admin, technician or viewer.")
    username = username.strip()
    User = get_user_model()
    with transaction.atomic():
        # Serialise with the panel's team changes (cpo.team locks the CPO row the same way).
        Cpo.objects.select_for_update().filter(pk=cpo.pk).first()
        user = User.objects.filter(username=username).first()
        if user is not None and role != Membership.Role.ADMIN:
            admins = Membership.objects.filter(cpo=cpo, role=Membership.Role.ADMIN)
            if admins.filter(user=user).exists() and not admins.exclude(user=user).exists():
                raise CpoError(
                    f"{username} is the last admin of {cpo.name}: make another member admin first."
                )
        if user is None:
            if not create_user:
                raise CpoError(f"No user “{username}” (add --create-user to create it).")
            user = _user_create(username=username, password=password)
        membership, created = Membership.objects.update_or_create(
            user=user, cpo=cpo, defaults={"role": role}
        )
        details = {"role": role, "new_member": created}
        audit_record(action=Action.MEMBER_SET, cpo=cpo, target=username, details=details)
    return membership


def _user_create(*, username: str, password: str | None) -> AbstractBaseUser:
    if not username:
        raise CpoError("A user needs a username.")
    if not password:
        raise CpoError("A new user needs a password (--password).")
    User = get_user_model()
    user = User(username=username)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise CpoError("Password refused: " + " ".join(exc.messages))
    user.set_password(password)
    user.save()
    return user


def cpo_time_zone_set(*, cpo: Cpo, time_zone: str, by: AbstractBaseUser) -> Cpo:
    """Set the time zone the panel shows the CPO's times in (an IANA name), audited.
    The caller checked that `by` administers the CPO. ValidationError for a bad name."""
    validate_time_zone(time_zone)
    with transaction.atomic():
        previous = cpo.time_zone
        Cpo.objects.filter(pk=cpo.pk).update(time_zone=time_zone)
        cpo.time_zone = time_zone
        audit_record(
            action=Action.CPO_SETTINGS_CHANGED,
            user=by,
            cpo=cpo,
            target=cpo.name,
            details={"time_zone": [previous, time_zone]},
        )
    return cpo
