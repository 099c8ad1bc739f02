"""LOG_FORMAT=json: JSON lines with the charger's CBID and the request's id."""

from __future__ import annotations

import json
import logging

import pytest

from ocpp_gateway import log_context
from ocpp_gateway.runtime import spawn_detached
from tests.ocpp_gateway.conftest import open_charger
from virta.logging import JsonFormatter, request_id


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines():
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_line_is_one_json_object_with_context(lines):
    token = request_id.set("req-1")
    cbid_token = log_context.cbid.set("CP-9")
    try:
        logging.getLogger("x").warning("hello %s", "world")
    finally:
        request_id.reset(token)
        log_context.cbid.reset(cbid_token)
    logging.getLogger("x").warning("bare")
    first, second = lines[-2:]
    assert first["message"] == "hello world" and first["level"] == "WARNING"
    assert (first["cbid"], first["request_id"]) == ("CP-9", "req-1")
    assert first["time"].endswith("Z") and first["logger"] == "x"
    assert "cbid" not in second and "request_id" not in second


def test_exceptions_are_kept(lines):
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    assert "ValueError: boom" in lines[-1]["exc_info"]


def test_requests_get_an_id_echoed_in_the_response(client, lines):
    response = client.get("/accounts/login/", headers={"X-Request-ID": "abc-123"})
    assert response["X-Request-ID"] == "abc-123"
    forged = client.get("/accounts/login/", headers={"X-Request-ID": 'bad"\n{id}'})
    assert forged["X-Request-ID"] != 'bad"\n{id}' and len(forged["X-Request-ID"]) == 32


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_chargers_lines_carry_its_cbid_and_shared_work_does_not(lines):
    charger = open_charger("CP-LOG")
    assert await charger.connect()
    await charger.boot()

    async def shared():
        logging.getLogger("shared").info("process-wide")

    # Started from inside the test's task with a CBID set: a detached task has none.
    token = log_context.cbid.set("CP-LOG")
    try:
        await spawn_detached(shared())
    finally:
        log_context.cbid.reset(token)
    await charger.close()
    connected = [line for line in lines if "Station CP-LOG connected" in line["message"]]
    assert connected and connected[0]["cbid"] == "CP-LOG"
    [detached] = [line for line in lines if line["message"] == "process-wide"]
    assert "cbid" not in detached
