"""CPU cost of the gateway's metrics per answered CALL (bench/RESULTS.md, issue 16).

A CALL answered costs the frame path three metric updates: the frame in, the frame out
and the answer's duration. This times them in a loop, in multiprocess mode (a temporary
PROMETHEUS_MULTIPROC_DIR, as production runs them) and in single-process mode:

    .venv/bin/python bench/metrics_cost.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

N = 200_000
CODE = """
import os, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "virta.settings")
os.environ.setdefault("SECRET_KEY", "bench")
import django
django.setup()
from ocpp_gateway import metrics
known = frozenset({"Heartbeat", "MeterValues"})
n = %d
started = time.process_time()
for _ in range(n):
    metrics.frame("in", 2, "Heartbeat", known)
    metrics.frame("out", 3, "Heartbeat", known)
    metrics.call_answered("Heartbeat", 0.004, known)
print((time.process_time() - started) / n * 1e6)
"""


def run(env: dict) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CODE % N], env=os.environ | env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        multi = run({"PROMETHEUS_MULTIPROC_DIR": directory})
    single = run({"PROMETHEUS_MULTIPROC_DIR": ""})
    off = run({"OCPP_METRICS": "0"})
    print(
        f"per answered CALL: multiprocess {multi:.2f} us, single process {single:.2f} us, "
        f"switched off {off:.2f} us (CPU time, {N} calls)"
    )


if __name__ == "__main__":
    time.sleep(0)
    main()
