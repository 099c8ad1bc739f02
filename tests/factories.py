"""Small `make_*` helpers for test data."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from cpo.models import Cpo, Membership
from stations.models import Protocol, RegistrationStatus, Station

User = get_user_model()

PASSWORD = "correct-horse-battery"


def make_user(username: str, *, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    return User.objects.create_user(username, f"{username}@example.com", PASSWORD)


def make_cpo(name: str) -> Cpo:
    return Cpo.objects.create(name=name)


def make_member(user: User, cpo: Cpo, role: str = Membership.Role.ADMIN) -> Membership:
    return Membership.objects.create(user=user, cpo=cpo, role=role)


def make_station(cbid: str, *, cpo: Cpo | None = None, **fields) -> Station:
    defaults = {
        "protocol": Protocol.OCPP,
        "ocpp_version": "1.6",
        "name": "" if cpo is None else f"Station {cbid}",
        "registration_status": (
            RegistrationStatus.ACCEPTED if cpo is not None else RegistrationStatus.PENDING
        ),
    }
    defaults.update(fields)
    return Station.objects.create(cbid=cbid, cpo=cpo, **defaults)
