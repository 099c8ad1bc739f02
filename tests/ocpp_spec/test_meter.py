"""Sampled values: OCPP's defaults and units, without a database."""

from __future__ import annotations

import pytest

from ocpp_spec.meter import measurand_base_unit, normalize


@pytest.mark.parametrize(
    ("value", "unit", "multiplier", "expected"),
    [
        ("6.25", "kWh", 0, (6250.0, "Wh")),
        ("3500", "Wh", 0, (3500.0, "Wh")),
        ("1.5", "KWH", 0, (1500.0, "Wh")),  # firmware spelling
        ("2", "MWh", 0, (2_000_000.0, "Wh")),  # mega, not milli
        ("12.5", "kWh", 3, (12_500_000.0, "Wh")),  # 2.x multiplier
        ("7", "A", -1, (pytest.approx(0.7), "A")),
        ("11", "kW", 0, (11000.0, "W")),
        ("21.5", "Celcius", 0, (21.5, "Celsius")),  # 1.6's own spelling
        ("5", "Wh", 10**6, (None, "Wh")),  # a wild multiplier is never applied
        ("nan", "Wh", 0, (None, "Wh")),
        ("OCMF|…", "Wh", 0, (None, "Wh")),
        ("3", "lumen-ish", 0, (3.0, "lumen-ish")),  # unknown units pass through
    ],
)
def test_normalize(value, unit, multiplier, expected):
    assert normalize(value, unit, multiplier) == expected


@pytest.mark.parametrize(
    ("measurand", "unit"),
    [
        ("Energy.Active.Import.Register", "Wh"),
        ("Energy.Reactive.Export.Interval", "varh"),
        ("Power.Active.Import", "W"),
        ("Power.Factor", ""),
        ("Current.Import", "A"),
        ("Voltage", "V"),
        ("SoC", "Percent"),
        ("RPM", ""),
    ],
)
def test_a_unit_left_out_is_the_measurands_base_unit(measurand, unit):
    assert measurand_base_unit(measurand) == unit
