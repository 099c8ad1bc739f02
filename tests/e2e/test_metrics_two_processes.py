"""/metrics across two daphne processes under simulated load: the figures add up.

Two daphne processes share a PROMETHEUS_MULTIPROC_DIR; the load generator (bench/loadgen.py)
spreads its chargers over both; a scrape of either process counts every frame of both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import server_environment
from tests.e2e.servers import DaphneServer

ROOT = Path(__file__).resolve().parent.parent.parent
TOKEN = "scrape-secret-for-tests"

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def scrape(server: DaphneServer, token: str | None = TOKEN) -> dict[tuple, float]:
    request = urllib.request.Request(f"{server.http_url}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def test_two_processes_count_what_the_load_generator_sent(tmp_path):
    prom = tmp_path / "prometheus"
    prom.mkdir()
    env = server_environment(
        PROMETHEUS_MULTIPROC_DIR=str(prom),
        METRICS_TOKEN=TOKEN,
        OCPP_POOL_BOOT_STATUS="Accepted",
        OCPP_POOL_NEW_PER_ADDRESS_PER_HOUR="0",
    )
    env.pop("REDIS_URL", None)  # nothing here crosses processes but the metrics files
    with DaphneServer(env=env) as first, DaphneServer(env=env) as second:
        # Off for anyone without the token.
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(first, token="wrong")
        assert refused.value.code == 403

        run = subprocess.run(
            [
                sys.executable,
                "bench/loadgen.py",
                "--url",
                f"{first.ws_base_url},{second.ws_base_url}",
                "--scenario",
                "smoke",
                "--chargers",
                "40",
                "--duration",
                "6",
                "--v201-share",
                "0.5",
                "--workers",
                "1",
                "--prefix",
                "METRICS-",
            ],
            cwd=ROOT,
            env=os.environ | {"DATABASE_URL": env["DATABASE_URL"]},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        assert summary["failure_count"] == 0, summary["failures"]
        sent = Counter()
        for action, stats in summary["latency"].items():
            if action != "connect":  # the websocket handshake, not a call
                sent[action.removesuffix(" (fleet booting)")] += stats["n"]
        assert sum(sent.values()) == summary["calls"] > 40

        # Either process answers for both; they agree.
        samples = scrape(first)
        assert total(scrape(second), "ocpp_frames_total") == total(samples, "ocpp_frames_total")
        for action, count in sent.items():
            assert (
                total(samples, "ocpp_frames_total", direction="in", type="CALL", action=action)
                == count
            ), action
        assert (
            total(samples, "ocpp_frames_total", direction="out", type="CALLRESULT")
            == summary["calls"]
        )
        assert total(samples, "ocpp_call_duration_seconds_count") == summary["calls"]
        assert total(samples, "ocpp_callerrors_total") == 0
        # Both processes served chargers.
        booted = total(samples, "ocpp_frames_total", direction="in", action="BootNotification")
        assert booted == 40
        # The load generator closed its sockets: nobody is connected any more.
        assert total(samples, "ocpp_connected_chargers") == 0
        # Written to the database in batches, every received frame included.
        assert (
            total(samples, "ocpp_db_batch_size_sum", writer="message log") >= 2 * summary["calls"]
        )
