"""The benchmark's smoke run (`bench/run.py --smoke`) on the test database, so it never rots.

100 chargers boot and send Heartbeats and MeterValues for a few seconds against one
daphne, then against the bare baseline; every call must be answered and every boot be in
the database.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocpp_spec.identity import SUBPROTOCOLS

# The module, not the function: a test_* name imported here would be collected as a test.
from tests.e2e import conftest as e2e

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.e2e


def load_bench_module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def run_smoke(results: Path) -> subprocess.CompletedProcess:
    # Half the fleet speaks 2.0.1 once the gateway offers it; until then all speak 1.6.
    v201_share = "0.5" if "ocpp2.0.1" in SUBPROTOCOLS else "0"
    return subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--v201-share", v201_share]
        + ["--results", str(results)],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": e2e.test_database_url()},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_smoke_run_answers_every_charger_and_stores_every_boot(tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"

    run = run_smoke(results)

    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    by_target = {r["target"]: r for r in map(json.loads, results.read_text().splitlines())}
    csms, baseline = by_target["csms"], by_target["baseline"]
    assert csms["load"]["failure_count"] == 0, csms["load"]["failures"]
    assert csms["load"]["held"] == 100
    assert csms["load"]["latency"]["Heartbeat"]["n"] > 0
    assert csms["database"]["complete"], csms["database"]
    assert baseline["load"]["held"] == 100
    assert "Heartbeat_p99" in csms["ratio_to_baseline"]


@pytest.mark.parametrize("url", ["ws://192.0.2.10:8000/ocpp", "ws://example.com/ocpp"])
def test_load_generator_refuses_any_target_but_loopback(url: str) -> None:
    loadgen = load_bench_module("loadgen")

    with pytest.raises(SystemExit, match="only targets loopback"):
        loadgen.check_loopback(["ws://127.0.0.1:8000/ocpp", url])


def test_load_generator_percentiles_are_nearest_rank() -> None:
    loadgen = load_bench_module("loadgen")

    stats = loadgen.percentiles([i / 1000 for i in range(1, 101)])  # 1 ms … 100 ms

    assert (stats["p50_ms"], stats["p95_ms"], stats["p99_ms"], stats["max_ms"]) == (
        50.0,
        95.0,
        99.0,
        100.0,
    )
