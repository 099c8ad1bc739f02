"""deploy/monitoring: the dashboard and the alert rules name metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest

from ocpp_gateway import metrics  # noqa: F401 — registers the gateway's metrics
from virta.metrics import AlertsCollector

MONITORING = Path(__file__).resolve().parent.parent.parent / "deploy" / "monitoring"
NAME = re.compile(r"\b((?:ocpp|virta)_[a-z_]+)")


def exposed_names() -> set[str]:
    text = generate_latest(REGISTRY).decode()
    names = set(re.findall(r"^# TYPE (\S+)", text, re.MULTILINE))
    suffixed = {n + s for n in names for s in ("", "_total", "_bucket", "_sum", "_count")}
    return suffixed | {"virta_alerts_open"}


def test_alerts_collector_names_its_family(monkeypatch):
    monkeypatch.setattr("virta.metrics.alerts_open_counts", lambda: {("offline", "open"): 3})
    [family] = AlertsCollector().collect()
    assert family.name == "virta_alerts_open"
    assert family.samples[0].value == 3


@pytest.mark.parametrize("name", ["grafana-dashboard.json", "prometheus-rules.yml"])
def test_monitoring_files_use_existing_metrics(name):
    text = (MONITORING / name).read_text()
    used = set(NAME.findall(text))
    assert used, name
    assert used <= exposed_names(), used - exposed_names()


def test_dashboard_is_valid_json_with_panels():
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert len(dashboard["panels"]) >= 10
    assert all(panel["targets"] for panel in dashboard["panels"])
