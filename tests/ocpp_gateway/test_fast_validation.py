"""The compiled schemas (fastjsonschema) never accept what the library's validator refuses.

The frame path asks the compiled schema first and trusts its "valid"; anything else goes
to jsonschema. So a payload the compiled schema accepts must have no jsonschema error, for
every schema of every version, requests and answers. Payloads are generated from each
schema (mostly following it, with wrong types, extra and missing fields mixed in).
"""

from __future__ import annotations

import json
from pathlib import Path

import ocpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.messages import get_validator

from ocpp_gateway.protocol import CALL, CALLRESULT, fast_valid

SCHEMAS = Path(ocpp.__file__).parent
VERSIONS = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}


def schema_cases() -> list[tuple[int, str, str]]:
    cases = []
    for version, folder in VERSIONS.items():
        for path in sorted((SCHEMAS / folder / "schemas").glob("*.json")):
            name = path.stem
            if name.endswith("Response"):
                case = (CALLRESULT, name.removesuffix("Response"), version)
            else:
                case = (CALL, name.removesuffix("Request"), version)
            try:
                get_validator(*case)
            except OSError:
                continue  # A file the library itself cannot find by action name.
            cases.append(case)
    return cases


NOISE = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
    | st.just([])
    | st.just({})
)


def from_schema(schema: dict, root: dict, depth: int = 0) -> st.SearchStrategy:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return from_schema(root["definitions"][name], root, depth)
    if depth > 4:
        return NOISE
    kind = schema.get("type")
    options = []
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if kind == "object" or "properties" in schema:
        properties = {
            key: from_schema(value, root, depth + 1)
            for key, value in schema.get("properties", {}).items()
        }
        required = [key for key in schema.get("required", []) if key in properties]
        followed = st.fixed_dictionaries(
            {key: properties[key] for key in required},
            optional={key: s for key, s in properties.items() if key not in required},
        )
        loose = st.fixed_dictionaries({}, optional=properties)
        extra = st.builds(lambda d, k, v: {**d, k: v}, followed, st.text(max_size=5), NOISE)
        options += [followed, followed, loose, extra]
    elif kind == "array":
        items = from_schema(schema.get("items", {}), root, depth + 1)
        options.append(st.lists(items, max_size=3))
    elif kind == "string" and "enum" not in schema:
        longest = schema.get("maxLength", 20)
        options.append(st.text(max_size=min(longest + 2, 60)))
    elif kind == "integer":
        options.append(st.integers(-(2**33), 2**33))
    elif kind == "number":
        options.append(st.floats(allow_nan=False, allow_infinity=False) | st.integers())
    elif kind == "boolean":
        options.append(st.booleans())
    if not options:
        return NOISE
    return st.one_of(*options, *options, *options, NOISE)


@pytest.mark.parametrize(("message_type", "action", "version"), schema_cases())
def test_the_compiled_schema_accepts_nothing_jsonschema_refuses(message_type, action, version):
    validator = get_validator(message_type, action, version)
    root = validator.schema

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(from_schema(root, root))
    def check(payload):
        # JSON round trip: the frame path only ever sees what json.loads gives.
        payload = json.loads(json.dumps(payload))
        if fast_valid(message_type, action, version, payload):
            errors = [e.message for e in validator.iter_errors(payload)]
            assert not errors, (payload, errors)

    check()


def test_valid_payloads_take_the_fast_path():
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    assert fast_valid(CALL, "StatusNotification", "1.6", status)
    assert not fast_valid(CALL, "StatusNotification", "1.6", {**status, "connectorId": "1"})
    assert not fast_valid(CALL, "NoSuchAction", "1.6", {})
