"""Outcome handlers: registered per kind, run when a Command's result is recorded."""

from __future__ import annotations

import pytest

from stations.services import command_outcomes
from stations.services.command_outcomes import command_outcome
from stations.services.commands import (
    command_mark_sent,
    command_record_failure,
    command_record_result,
    command_request_system,
)
from tests.factories import make_station

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard(monkeypatch):
    monkeypatch.setattr(command_outcomes, "_handlers", command_outcomes.defaultdict(list))
    outcomes = []
    command_outcome("clear_cache")(outcomes.append)
    return outcomes


@pytest.fixture
def sent(cpo_a, monkeypatch):
    monkeypatch.setattr("stations.services.commands.station_notify", lambda **kwargs: None)
    station = make_station("CP-1", cpo=cpo_a, connected=True, channel_name="chan!1")
    command = command_request_system(station=station, kind="clear_cache", params={})
    command_mark_sent(command_id=command.pk, station_id=station.pk)
    return command


def test_a_handler_hears_the_result_of_its_kind(heard, sent):
    assert command_record_result(
        command_id=sent.pk, status="rejected", response={"status": "Rejected"}
    )
    [outcome] = heard
    assert (outcome.command_id, outcome.station_id, outcome.kind, outcome.action) == (
        sent.pk,
        sent.station_id,
        "clear_cache",
        "ClearCache",
    )
    assert (outcome.status, outcome.response) == ("rejected", {"status": "Rejected"})


def test_a_result_recorded_twice_runs_the_handlers_once(heard, sent):
    command_record_result(command_id=sent.pk, status="accepted", response={"status": "Accepted"})
    assert not command_record_result(command_id=sent.pk, status="accepted", response={})
    assert not command_record_failure(command_id=sent.pk, status="error", error="late")
    assert len(heard) == 1


def test_an_unknown_kind_cannot_be_registered():
    with pytest.raises(ValueError, match="Unknown command"):
        command_outcome("make_coffee")
