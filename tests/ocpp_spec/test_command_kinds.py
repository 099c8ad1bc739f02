"""The table of command kinds: complete, consistent, and the one source for every version."""

from __future__ import annotations

import pytest

from ocpp_spec.commands import (
    COMMAND_KINDS,
    KINDS_ALLOWED_WHEN_PENDING,
    CommandNotSupported,
    command_kind,
    kind_for_action,
    v2,
    v16,
)
from ocpp_spec.commands.base import VERSIONS, CommandKind


@pytest.mark.parametrize("kind", list(COMMAND_KINDS))
def test_every_kind_says_what_it_is_and_where_it_exists(kind):
    entry = COMMAND_KINDS[kind]
    assert entry.kind == kind
    assert str(entry.label)
    assert entry.versions and entry.versions <= set(VERSIONS)
    for version in entry.versions:
        assert kind_for_action(entry.action_for(version)) == kind


def test_the_pending_kinds_come_from_the_table():
    assert KINDS_ALLOWED_WHEN_PENDING == {
        kind for kind, entry in COMMAND_KINDS.items() if entry.allowed_when_pending
    }


def test_2x_commands_exist_in_2_0_1_and_2_1_and_a_2_1_entry_can_stand_alone():
    assert COMMAND_KINDS["get_base_report"].versions == {"2.0.1", "2.1"}
    assert COMMAND_KINDS["reset"].versions == {"1.6", "2.0.1", "2.1"}
    only_21 = CommandKind("x", label="X", v21=COMMAND_KINDS["reset"].v2)
    assert only_21.versions == {"2.1"}
    assert only_21.action_for("1.6") == "Reset"


def test_an_unknown_kind_is_refused_by_name():
    with pytest.raises(CommandNotSupported, match="Unknown command 'launch'"):
        command_kind("launch")


def test_disruptive_commands_are_marked():
    disruptive = {kind for kind, entry in COMMAND_KINDS.items() if entry.disruptive}
    assert {"reset", "remote_stop", "unlock_connector"} <= disruptive
    assert "get_configuration" not in disruptive


@pytest.mark.parametrize("module", ["v16", "v2"])
def test_an_answer_without_a_status_can_be_read_by_its_own_rule(module):
    maker = {"v16": v16, "v2": v2}[module]
    call = maker.call(
        "GetLocalListVersion",
        lambda params: ("GetLocalListVersion", {}),
        statuses={},
        interpret=lambda response: "accepted" if "listVersion" in response else "error",
    )
    assert call.interpret({"listVersion": 3}) == "accepted"
    assert call.interpret({}) == "error"
    assert call.interpret(None) == "error"
