"""One command to many stations at once (`command_request_system_many`)."""

from __future__ import annotations

import pytest

from stations.models import Command, Protocol
from stations.services import commands as commands_module
from stations.services.commands import command_request_system_many
from stations.services.notify import station_notify_many
from tests.factories import make_station

pytestmark = pytest.mark.django_db

TRIGGER = {"kind": "trigger_message", "params": {"message": "StatusNotification"}}


@pytest.fixture
def sent(monkeypatch):
    """The "go" messages, one list per station_notify_many call; `fail` names channels."""
    calls = Deliveries()
    fail = calls.fail

    def fake_many(messages):
        calls.append(list(messages))
        return [RuntimeError("down") if channel in fail else None for channel, _ in messages]

    monkeypatch.setattr(commands_module, "station_notify_many", fake_many)
    return calls


class Deliveries(list):
    def __init__(self) -> None:
        super().__init__()
        self.fail: set[str] = set()


def test_every_station_gets_its_command_delivered_in_one_go(
    cpo_a, sent, django_capture_on_commit_callbacks
):
    stations = [
        make_station(f"CP-{i}", cpo=cpo_a, connected=True, channel_name=f"chan.{i}")
        for i in range(5)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        commands = command_request_system_many(stations=stations, **TRIGGER)
    assert len(commands) == 5
    assert {c.status for c in commands} == {Command.Status.QUEUED}
    assert {c.action for c in commands} == {"TriggerMessage"}
    assert len(sent) == 1
    assert sorted(sent[0]) == sorted(
        (f"chan.{c.station.cbid[3:]}", {"type": "station.command", "command_id": c.pk})
        for c in commands
    )


def test_offline_stations_fail_at_once_and_others_are_left_out(cpo_a, sent):
    online = make_station("CP-ON", cpo=cpo_a, connected=True, channel_name="chan.on")
    offline = make_station("CP-OFF", cpo=cpo_a)
    other = make_station("CP-ENSTO", cpo=cpo_a, protocol=Protocol.ENSTO)
    commands = command_request_system_many(stations=[online, offline, other], **TRIGGER)
    by_station = {c.station.cbid: c for c in commands}
    assert set(by_station) == {"CP-ON", "CP-OFF"}
    assert by_station["CP-OFF"].status == Command.Status.OFFLINE
    assert Command.objects.count() == 2


def test_an_undelivered_command_is_an_error_the_others_stay_queued(
    cpo_a, sent, django_capture_on_commit_callbacks
):
    sent.fail.add("chan.b")
    a = make_station("CP-A", cpo=cpo_a, connected=True, channel_name="chan.a")
    b = make_station("CP-B", cpo=cpo_a, connected=True, channel_name="chan.b")
    with django_capture_on_commit_callbacks(execute=True):
        command_request_system_many(stations=[a, b], **TRIGGER)
    status = dict(Command.objects.values_list("station__cbid", "status"))
    assert status == {"CP-A": Command.Status.QUEUED, "CP-B": Command.Status.ERROR}
    assert "Could not reach the gateway" in Command.objects.get(station=b).error


def test_notify_many_reports_each_message(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    results = station_notify_many(
        [("chan.ok", {"type": "station.command"}), ("bad name!", {"type": "station.command"})]
    )
    assert results[0] is None
    assert isinstance(results[1], Exception)
    assert station_notify_many([]) == []


def test_commands_are_grouped_into_one_message_per_process(
    cpo_a, sent, django_capture_on_commit_callbacks
):
    sent.fail.add("specific.p2!gateway")
    channels = ["specific.p1!a", "specific.p1!b", "specific.p2!c"]
    stations = [
        make_station(f"CP-{i}", cpo=cpo_a, connected=True, channel_name=channel)
        for i, channel in enumerate(channels)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        commands = command_request_system_many(stations=stations, **TRIGGER)
    by_channel = {c.station.channel_name: c.pk for c in commands}
    assert len(sent) == 1
    assert {message["type"] for _, message in sent[0]} == {"station.commands"}
    assert {mailbox: sorted(message["commands"]) for mailbox, message in sent[0]} == {
        "specific.p1!gateway": sorted(
            [
                ("specific.p1!a", by_channel["specific.p1!a"]),
                ("specific.p1!b", by_channel["specific.p1!b"]),
            ]
        ),
        "specific.p2!gateway": [("specific.p2!c", by_channel["specific.p2!c"])],
    }
    status = dict(Command.objects.values_list("station__channel_name", "status"))
    assert status == {
        "specific.p1!a": Command.Status.QUEUED,
        "specific.p1!b": Command.Status.QUEUED,
        "specific.p2!c": Command.Status.ERROR,
    }
