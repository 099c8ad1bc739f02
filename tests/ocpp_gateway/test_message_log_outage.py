"""The message log and last_seen through a database outage (issue 11.7).

Rows and `last_seen` times are kept and retried while the database is away, for as long as
the buffer holds; the bound drops the oldest, counted and logged. Through a real PostgreSQL
restart under 500 chargers: tests/e2e/test_faults_postgres.py.
"""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError

import ocpp_gateway.message_log as message_log_module
from ocpp_gateway.message_log import MessageLog
from stations.models import OcppMessage, Station
from stations.services import station_log
from stations.services.station_log import ocpp_log_write
from tests.factories import make_station

pytestmark = [pytest.mark.django_db(transaction=True)]


def failing_for(calls: int):
    """`ocpp_log_write` that finds the database away for its first `calls` calls."""
    state = {"calls": 0}

    def write(**kwargs):
        state["calls"] += 1
        if state["calls"] <= calls:
            raise OperationalError("connection refused (database restarting)")
        return ocpp_log_write(**kwargs)

    return write, state


async def test_rows_and_last_seen_survive_a_long_outage(monkeypatch, settings, caplog):
    settings.OCPP_LOG_FLUSH_INTERVAL = 3600  # only the test's flushes
    station = await Station.objects.acreate(cbid="CP-OUT", name="x")
    # A flush a second: 100 failed flushes are an outage of a minute and a half and more.
    write, state = failing_for(100)
    monkeypatch.setattr(message_log_module, "ocpp_log_write", write)
    log = MessageLog()
    for n in range(300):
        log.record(
            station_id=station.pk, cbid="CP-OUT", direction="in", message_type=2, unique_id=str(n)
        )
        if n % 3 == 0:
            with caplog.at_level(logging.DEBUG, logger="ocpp_gateway.message_log"):
                await log.flush()
    assert state["calls"] == 100
    assert await OcppMessage.objects.acount() == 0
    for _ in range(5):
        await log.flush()
    ids = [m async for m in OcppMessage.objects.values_list("unique_id", flat=True)]
    assert sorted(ids, key=int) == [str(n) for n in range(300)]
    assert (await Station.objects.aget(pk=station.pk)).last_seen is not None
    assert log.dropped_rows == 0
    # One line when the outage starts, not one per retry.
    failures = [r for r in caplog.records if "failed; keeping them" in r.getMessage()]
    assert len(failures) == 1


async def test_the_bound_drops_the_oldest_counted_and_logged(monkeypatch, settings, caplog):
    settings.OCPP_LOG_FLUSH_INTERVAL = 3600
    settings.OCPP_LOG_MAX_BUFFERED_ROWS = 100
    station = await Station.objects.acreate(cbid="CP-FULL", name="x")
    write, _state = failing_for(10**9)
    monkeypatch.setattr(message_log_module, "ocpp_log_write", write)
    log = MessageLog()
    with caplog.at_level(logging.ERROR, logger="ocpp_gateway.message_log"):
        for n in range(250):
            log.record(
                station_id=station.pk,
                cbid="CP-FULL",
                direction="in",
                message_type=2,
                unique_id=str(n),
            )
    assert len(log._rows) <= 100
    assert log.dropped_rows == 250 - len(log._rows)
    # The newest are kept.
    assert log._rows[-1].unique_id == "249"
    lines = [r.getMessage() for r in caplog.records if "buffer full" in r.getMessage()]
    assert lines and f"({log.dropped_rows} dropped since start)" in lines[-1]
    assert len(lines) < 20


def test_a_database_lost_while_writing_row_by_row_keeps_every_row(monkeypatch):
    """A batch refused for its data is written row by row; if the database goes away then,
    the rows are kept for the next flush (the outage bug: "one by one failed; dropped")."""
    station = make_station("CP-HALF")
    log = MessageLog()
    for _ in range(3):
        log.record(station_id=station.pk, cbid=station.cbid, direction="in", message_type=2)

    def refused(*args, **kwargs):
        raise ValueError("a row the database refuses")

    def away(self, *args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(station_log, "bulk_insert", refused)
    monkeypatch.setattr(OcppMessage, "save", away)
    with pytest.raises(OperationalError):
        ocpp_log_write(rows=log._rows, seen=log._seen)
