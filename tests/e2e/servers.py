"""A real daphne server in a subprocess, for end-to-end tests.

    with DaphneServer(env={"OCPP_POOL_BOOT_STATUS": "Pending"}) as server:
        websockets.connect(server.ws_url("CP-1"), subprotocols=["ocpp1.6"])

The port is chosen at run time; the server's output goes to a temporary log file that
is shown when it fails to start. `tests/e2e/conftest.py` binds it to the test database.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
# The venv's daphne: sys.executable is <venv>/bin/python (not resolved: that would leave the venv).
DAPHNE = Path(sys.executable).parent / "daphne"

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class ServerFailed(RuntimeError):
    pass


class DaphneServer:
    """`daphne virta.asgi:application` on a free port, as production runs it (see the Makefile)."""

    def __init__(
        self,
        *,
        env: dict[str, str] | None = None,
        ping_interval: float = 30,
        ping_timeout: float = 30,
    ) -> None:
        self.env = dict(env or {})
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.port: int = 0
        self.process: subprocess.Popen | None = None
        self._log = tempfile.NamedTemporaryFile(prefix="daphne-e2e-", suffix=".log", delete=False)
        self.log_path = Path(self._log.name)

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ws_url(self, cbid: str) -> str:
        return f"ws://{HOST}:{self.port}/ocpp/{cbid}"

    @property
    def ws_base_url(self) -> str:
        """The URL without the CBID, as the simulator's --url takes it."""
        return f"ws://{HOST}:{self.port}/ocpp"

    def log_text(self) -> str:
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"(log unavailable: {exc})"

    def start(self) -> DaphneServer:
        # Another process may grab the port between free_port() and daphne's bind: retry.
        for _attempt in range(3):
            self.port = free_port()
            self._spawn()
            if self._wait_until_listening():
                return self
        raise ServerFailed(f"daphne did not start; its output:\n{self.log_text()}")

    def endpoint_args(self) -> list[str]:
        """Where daphne listens (subclasses add endpoints)."""
        return ["-b", HOST, "-p", str(self.port)]

    def command(self) -> list[str]:
        return [
            str(DAPHNE),
            *self.endpoint_args(),
            # As in production: no 24 h socket lifetime, 60 s handshakes, pings.
            "--websocket_timeout",
            "-1",
            "--websocket_connect_timeout",
            "60",
            "--ping-interval",
            str(self.ping_interval),
            "--ping-timeout",
            str(self.ping_timeout),
            "--websocket-max-message-size",
            "524288",
            "virta.asgi:application",
        ]

    def _spawn(self) -> None:
        environment = os.environ | {"DJANGO_SETTINGS_MODULE": "virta.settings"} | self.env
        self.process = subprocess.Popen(
            self.command(),
            cwd=PROJECT_DIR,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _wait_until_listening(self) -> bool:
        """True once the port accepts connections; False if daphne exited (port taken?)."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServerFailed(
            f"daphne did not listen on {self.port} within {START_TIMEOUT:.0f} s; "
            f"its output:\n{self.log_text()}"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        self.process = None
        self._log.flush()

    def close(self) -> None:
        """Stop the server and remove its log."""
        self.stop()
        self._log.close()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> DaphneServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is not None:
            # Captured: pytest shows the server's log beside the failure.
            print(f"--- daphne log ({self.http_url}) ---\n{self.log_text()[-20000:]}")
        self.close()
