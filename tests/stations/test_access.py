"""The one scoped lookup and the one role check (stations.services.access)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from stations.services.access import STATION_WRITE_DENIED, station_get_for_user
from tests.factories import make_station

pytestmark = pytest.mark.django_db


@pytest.fixture
def station(cpo_a):
    return make_station("CP-A", cpo=cpo_a)


def test_a_member_sees_and_an_admin_may_change(alice, station):
    assert station_get_for_user(user=alice, pk=station.pk, write=True) == station


def test_another_cpo_gets_404_even_for_a_write(carol, station):
    with pytest.raises(Http404):
        station_get_for_user(user=carol, pk=station.pk, write=True)


def test_a_viewer_reads_but_may_not_change(bob, station):
    assert station_get_for_user(user=bob, pk=station.pk) == station
    with pytest.raises(PermissionDenied, match=STATION_WRITE_DENIED):
        station_get_for_user(user=bob, pk=station.pk, write=True)


def test_a_superuser_may_change_a_pool_station(root):
    pooled = make_station("CP-POOL")
    assert station_get_for_user(user=root, pk=pooled.pk, write=True) == pooled
