"""Security profile 2 against the real server: daphne terminating TLS itself.

A self-signed certificate is made at test time; daphne listens on a plain port and on a
TLS port (`-e ssl:…`, listed in OCPP_TLS_PORTS). A profile-2 station connects over wss
with its password and is refused over plain ws.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import websockets
from channels.db import database_sync_to_async
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocpp_spec.passwords import hash_password
from stations.models import ConnectionAttempt, Station
from tests.e2e.conftest import server_environment
from tests.e2e.servers import HOST, DaphneServer, free_port
from tests.factories import make_cpo, make_station

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "profile-two-secret-42"


def make_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csms.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class TlsDaphneServer(DaphneServer):
    """DaphneServer with a second, TLS-terminating endpoint (and proxy headers read)."""

    def __init__(self, *, key: Path, cert: Path, env: dict[str, str]) -> None:
        self.tls_port = free_port()
        self.key, self.cert = key, cert
        super().__init__(env=env | {"OCPP_TLS_PORTS": str(self.tls_port)})

    def wss_url(self, cbid: str) -> str:
        return f"wss://{HOST}:{self.tls_port}/ocpp/{cbid}"

    def endpoint_args(self) -> list[str]:
        tls = f"ssl:{self.tls_port}:interface={HOST}:privateKey={self.key}:certKey={self.cert}"
        return [*super().endpoint_args(), "-e", tls, "--proxy-headers"]


def basic_auth(cbid: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{cbid}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def tls_server(tmp_path):
    key, cert = make_certificate(tmp_path)
    server = TlsDaphneServer(key=key, cert=cert, env=server_environment())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        print(f"--- daphne log ---\n{server.log_text()[-20000:]}")
        server.close()


@pytest.fixture
def client_tls(tmp_path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    return context


async def profile2_station(cbid: str) -> Station:
    def setup():
        return make_station(
            cbid,
            cpo=make_cpo(f"CPO {cbid}"),
            auth_password_hash=hash_password(PASSWORD),
            security_profile=2,
        )

    return await database_sync_to_async(setup)()


async def boot(ws) -> list:
    await ws.send(
        json.dumps(
            [2, "1", "BootNotification", {"chargePointVendor": "A", "chargePointModel": "B"}]
        )
    )
    return json.loads(await ws.recv())


async def test_a_profile2_station_connects_over_wss_with_its_password(tls_server, client_tls):
    await profile2_station("CP-TLS")
    async with websockets.connect(
        tls_server.wss_url("CP-TLS"),
        subprotocols=["ocpp1.6"],
        additional_headers=basic_auth("CP-TLS", PASSWORD),
        ssl=client_tls,
    ) as ws:
        assert ws.subprotocol == "ocpp1.6"
        reply = await boot(ws)
    assert reply[0] == 3 and reply[2]["status"] == "Accepted"


async def test_a_profile2_station_is_refused_over_plain_ws(tls_server):
    await profile2_station("CP-PLAIN")
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(
            tls_server.ws_url("CP-PLAIN"),
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("CP-PLAIN", PASSWORD),
        ):
            pass
    assert refused.value.response.status_code == 403
    attempt = await ConnectionAttempt.objects.aget(cbid="CP-PLAIN")
    assert attempt.reason == "plain_ws"


async def test_a_forged_forwarded_proto_does_not_make_plain_ws_secure(tls_server):
    await profile2_station("CP-FORGED")
    headers = basic_auth("CP-FORGED", PASSWORD) | {"X-Forwarded-Proto": "https"}
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            tls_server.ws_url("CP-FORGED"), subprotocols=["ocpp1.6"], additional_headers=headers
        ):
            pass


async def test_wss_with_a_wrong_password_is_refused(tls_server, client_tls):
    await profile2_station("CP-WRONG")
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            tls_server.wss_url("CP-WRONG"),
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("CP-WRONG", "not-the-password-0"),
            ssl=client_tls,
        ):
            pass
    attempt = await ConnectionAttempt.objects.aget(cbid="CP-WRONG")
    assert attempt.reason == "bad_password"


# ---- through the reference TLS proxy (deploy/haproxy-tls.cfg) ---------------------------

REFERENCE_PROXY = Path(__file__).resolve().parent.parent.parent / "deploy" / "haproxy-tls.cfg"


def proxy_config(*, pem: Path, tls_port: int, plain_port: int, daphne_port: int) -> str:
    """The reference config with this test's certificate, ports and single daphne."""
    lines = []
    for line in REFERENCE_PROXY.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("bind :443 ssl crt"):
            line = f"    bind {HOST}:{tls_port} ssl crt {pem} alpn http/1.1"
        elif stripped.startswith("bind ") and ":80" in stripped:
            line = f"    bind {HOST}:{plain_port}"
        elif stripped.startswith("server daphne1"):
            line = f"    server daphne1 {HOST}:{daphne_port} check"
        elif stripped.startswith("server "):
            continue
        elif stripped.startswith("maxconn "):
            line = "    maxconn 1000"  # the production value needs a raised `ulimit -n`
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def proxied(tmp_path):
    """daphne (plain, --proxy-headers, trusting X-Forwarded-Proto) behind the reference HAProxy."""
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        pytest.skip("haproxy is not installed")
    key, cert = make_certificate(tmp_path)
    pem = tmp_path / "csms.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    server = TlsDaphneServer(
        key=key, cert=cert, env=server_environment(OCPP_TRUST_X_FORWARDED_PROTO="1")
    )
    server.env["OCPP_TLS_PORTS"] = ""  # only the proxy's header says "secure" here
    server.start()
    tls_port, plain_port = free_port(), free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        proxy_config(pem=pem, tls_port=tls_port, plain_port=plain_port, daphne_port=server.port)
    )
    process = subprocess.Popen(
        [haproxy, "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection((HOST, tls_port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        yield (
            f"wss://{HOST}:{tls_port}/ocpp",
            f"ws://{HOST}:{plain_port}/ocpp",
        )
    finally:
        process.terminate()
        process.wait(10)
        server.stop()
        print(f"--- daphne log ---\n{server.log_text()[-20000:]}")
        server.close()


async def test_through_the_reference_proxy_wss_is_accepted_and_plain_ws_refused(
    proxied, client_tls
):
    wss, plain = proxied
    await profile2_station("CP-PROXY")
    async with websockets.connect(
        f"{wss}/CP-PROXY",
        subprotocols=["ocpp1.6"],
        additional_headers=basic_auth("CP-PROXY", PASSWORD),
        ssl=client_tls,
    ) as ws:
        assert (await boot(ws))[2]["status"] == "Accepted"
    # Plain ws through the proxy, even claiming https itself: the proxy overwrites it.
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            f"{plain}/CP-PROXY",
            subprotocols=["ocpp1.6"],
            additional_headers=basic_auth("CP-PROXY", PASSWORD)
            | {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.99"},
        ):
            pass
    attempt = await ConnectionAttempt.objects.aget(cbid="CP-PROXY")
    assert attempt.reason == "plain_ws"
    # The address is the proxy's view of the client, not what the client claimed.
    assert attempt.remote_addr == HOST
