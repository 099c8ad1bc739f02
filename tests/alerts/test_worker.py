"""`manage.py alerts`: one active worker, elected by a PostgreSQL advisory lock."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from alerts.models import Alert
from alerts.services.worker import ADVISORY_LOCK_KEY, worker_lock_try
from tests.factories import make_station

pytestmark = pytest.mark.django_db(transaction=True)


def other_session():
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None}, autocommit=True)


def test_a_round_raises_the_alert(cpo_a):
    make_station(
        "CP-1", cpo=cpo_a, connected=False, disconnected_at=timezone.now() - timedelta(hours=1)
    )
    call_command("alerts", "--once")
    assert Alert.objects.get().state == "open"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks are PostgreSQL's")
def test_a_second_worker_stands_by_while_the_first_holds_the_lock(cpo_a):
    make_station(
        "CP-1", cpo=cpo_a, connected=False, disconnected_at=timezone.now() - timedelta(hours=1)
    )
    with other_session() as first:
        assert first.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY]).fetchone()[0]
        assert not worker_lock_try()
        call_command("alerts", "--once")
        assert Alert.objects.count() == 0
    # The first worker's session ended: the lock is free (once the server noticed).
    deadline = time.monotonic() + 10
    while not worker_lock_try() and time.monotonic() < deadline:
        time.sleep(0.05)
    call_command("alerts", "--once")
    assert Alert.objects.get().state == "open"
