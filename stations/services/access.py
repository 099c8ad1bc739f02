"""Who may see and who may change a station: the one scoped lookup and the one role check.

Every read starts from `Station.objects.for_user(user)`: another CPO's station is a 404,
as if it did not exist. Changing a station (its settings, commands to its charger, its
charger password) takes an admin or a technician of its CPO, or a superuser; anyone
else who may see it gets 403. Claiming and moving stations need an admin of the CPOs
concerned: `claiming.addable_cpos`.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from cpo.models import WRITE_ROLES, Cpo
from stations.models import Station

STATION_WRITE_DENIED = "Only admins and technicians of the station's CPO may do this."


def user_may_command(*, user, station: Station) -> bool:
    """Admins and technicians of the station's CPO, and superusers, may change it."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    if station.cpo_id is None:
        return False
    return Cpo.objects.for_user(user, roles=WRITE_ROLES).filter(pk=station.cpo_id).exists()


def station_check_write(*, user, station: Station) -> None:
    """PermissionDenied (403) unless `user_may_command`."""
    if not user_may_command(user=user, station=station):
        raise PermissionDenied(STATION_WRITE_DENIED)


def station_get_for_user(
    *, user, pk: int, write: bool = False, select_related: Sequence[str] = ()
) -> Station:
    """The station `pk` if `user` may see it, else Http404 (another CPO's station too);
    with `write`, PermissionDenied unless they may also change it."""
    stations = Station.objects.for_user(user)
    if select_related:
        stations = stations.select_related(*select_related)
    station = get_object_or_404(stations, pk=pk)
    if write:
        station_check_write(user=user, station=station)
    return station
