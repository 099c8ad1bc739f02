"""Nobody locks a charger out by failing its handshake, through real daphne (issue 11.4).

Daphne runs with `--proxy-headers`, as behind the reference proxy, so each client names its
address in X-Forwarded-For. An attacker who knows a password-protected CBID:

- sends handshakes without credentials: refused (HTTP 403), never counted as guesses;
- guesses passwords until its own address is locked out (even the right password is then
  refused from there, unchecked);
- guesses from the charger's own address (a shared NAT): that address is never locked out.

The real charger connects with its password from its address throughout.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ocpp_spec.passwords import hash_password
from stations.models import ConnectionAttempt, Station
from tests.e2e.conftest import server_environment
from tests.e2e.servers import DaphneServer
from tests.factories import make_cpo, make_station

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CBID = "CP-LOCKOUT"
PASSWORD = "the-real-password-0123"
CHARGER = "203.0.113.50"
ATTACKER = "198.51.100.66"
MAX_FAILURES = 3


class ProxiedDaphne(DaphneServer):
    def endpoint_args(self) -> list[str]:
        return [*super().endpoint_args(), "--proxy-headers"]


@pytest.fixture
def server(transactional_db) -> Iterator[DaphneServer]:
    env = server_environment(
        OCPP_AUTH_MAX_FAILURES_PER_CBID=str(MAX_FAILURES),
        OCPP_AUTH_MAX_FAILURES_PER_ADDRESS=str(MAX_FAILURES * 2),
    )
    with ProxiedDaphne(env=env) as daphne:
        yield daphne


def handshake(server: DaphneServer, address: str, password: str | None) -> bool:
    """Whether a handshake from `address` with `password` (None: no header) is accepted."""
    headers = {"X-Forwarded-For": address}
    if password is not None:
        token = base64.b64encode(f"{CBID}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        with connect(
            server.ws_url(CBID), subprotocols=["ocpp1.6"], additional_headers=headers
        ) as ws:
            ws.close()
            return True
    except InvalidStatus as refused:
        assert refused.response.status_code == 403
        return False


def test_failed_handshakes_never_lock_the_charger_out(server):
    make_station(
        CBID,
        cpo=make_cpo("Lockout CPO"),
        registration_status="Accepted",
        auth_password_hash=hash_password(PASSWORD),
        security_profile=1,
    )
    assert handshake(server, CHARGER, PASSWORD)
    assert Station.objects.get(cbid=CBID).connected_from_addr == CHARGER

    # No credentials, many times: no guess, no lock-out, not even of the sender.
    for _ in range(MAX_FAILURES * 4):
        assert not handshake(server, ATTACKER, None)
    assert not ConnectionAttempt.objects.filter(reason="bad_password").exists()
    assert not ConnectionAttempt.objects.filter(reason="rate_limited").exists()
    assert handshake(server, CHARGER, PASSWORD)

    # Wrong passwords lock out the guesser's address, not the charger.
    for n in range(MAX_FAILURES):
        assert not handshake(server, ATTACKER, f"guess-{n:016d}")
    assert not handshake(server, ATTACKER, PASSWORD)
    assert ConnectionAttempt.objects.filter(reason="rate_limited", remote_addr=ATTACKER).exists()
    assert handshake(server, CHARGER, PASSWORD)

    # Guesses from the charger's own address (a NAT it shares) never lock it out.
    for n in range(MAX_FAILURES * 3):
        assert not handshake(server, CHARGER, f"nat-guess-{n:012d}")
    assert handshake(server, CHARGER, PASSWORD)
    assert not ConnectionAttempt.objects.filter(reason="rate_limited", remote_addr=CHARGER).exists()
