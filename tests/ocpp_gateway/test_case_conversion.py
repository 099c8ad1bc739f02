"""The frame path's key conversion gives exactly what the `ocpp` library's would."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from ocpp.charge_point import (
    camel_to_snake_case,
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.v16 import call_result as v16
from ocpp.v16 import datatypes as v16_types
from ocpp.v201 import call_result as v201
from ocpp.v201 import datatypes as v201_types

from ocpp_gateway.protocol import to_camel_case, to_snake_case

keys = st.text(alphabet="abcdeXYZsocSOCurlURL_v2xV2G", min_size=1, max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)


@given(st.dictionaries(keys, json_values, max_size=5))
def test_snake_case_matches_the_library(payload):
    assert to_snake_case(payload) == camel_to_snake_case(payload)


@given(st.dictionaries(keys, json_values, max_size=5))
def test_camel_case_of_a_dict_matches_the_library(payload):
    assert to_camel_case(payload) == snake_to_camel_case(remove_nones(payload))


ANSWERS = [
    v16.Heartbeat(current_time="2026-01-01T00:00:00Z"),
    v16.StatusNotification(),
    v16.StartTransaction(
        transaction_id=7,
        id_tag_info=v16_types.IdTagInfo(status="Accepted", parent_id_tag=None),
    ),
    v16.StopTransaction(
        id_tag_info=v16_types.IdTagInfo(
            status="Blocked", expiry_date="2026-02-01T00:00:00Z", parent_id_tag="P"
        )
    ),
    v16.DataTransfer(status="Accepted", data=None),
    v201.TransactionEvent(
        id_token_info=v201_types.IdTokenInfoType(
            status="Accepted",
            group_id_token=v201_types.IdTokenType(id_token="G", type="Central"),
        )
    ),
    v201.BootNotification(
        current_time="2026-01-01T00:00:00Z",
        interval=300,
        status="Pending",
        status_info=v201_types.StatusInfoType(reason_code="Pool", additional_info=None),
    ),
]


def test_answers_serialise_as_the_library_does():
    for answer in ANSWERS:
        expected = snake_to_camel_case(remove_nones(serialize_as_dict(answer)))
        assert to_camel_case(answer) == expected, answer
