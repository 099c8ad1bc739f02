"""Meter values: what OCPP says a sample is when the charger does not say, and its units.

A sampled value's fields default the same way in OCPP 1.6 and 2.x: measurand
Energy.Active.Import.Register, context Sample.Periodic, location Outlet, and the unit
"Wh" for an energy measurand (read here as: the measurand's base unit, W for power, A
for current…). `normalize` turns a value into the unit without prefix (kWh → Wh) and
applies 2.x's unitOfMeasure.multiplier.
"""

from __future__ import annotations

import math

# The measurand of a sampled value that names none (OCPP 1.6 and 2.x): the energy register.
ENERGY_REGISTER = "Energy.Active.Import.Register"
POWER_IMPORT = "Power.Active.Import"
DEFAULT_CONTEXT = "Sample.Periodic"
DEFAULT_LOCATION = "Outlet"
BEGIN_CONTEXT = "Transaction.Begin"
END_CONTEXT = "Transaction.End"
# unitOfMeasure.multiplier is a power of ten (in practice -3..3); a wild one is not applied,
# so a broken charger cannot make us store an infinite number.
MAX_MULTIPLIER = 24
# Units as chargers spell them → (unit without prefix, factor). Exact spellings first
# (MWh is not mWh), then case-insensitive ones ("KWh" is common firmware spelling).
_UNITS_EXACT = {"MWh": ("Wh", 1e6), "MW": ("W", 1e6), "mA": ("A", 1e-3), "mV": ("V", 1e-3)}
_UNITS = {
    "wh": ("Wh", 1.0),
    "kwh": ("Wh", 1e3),
    "w": ("W", 1.0),
    "kw": ("W", 1e3),
    "varh": ("varh", 1.0),
    "kvarh": ("varh", 1e3),
    "var": ("var", 1.0),
    "kvar": ("var", 1e3),
    "vah": ("VAh", 1.0),
    "kvah": ("VAh", 1e3),
    "va": ("VA", 1.0),
    "kva": ("VA", 1e3),
    "a": ("A", 1.0),
    "v": ("V", 1.0),
    "k": ("K", 1.0),
    "hz": ("Hz", 1.0),
    "percent": ("Percent", 1.0),
    "celsius": ("Celsius", 1.0),
    # OCPP 1.6's own misspelling, in its UnitOfMeasure enum.
    "celcius": ("Celsius", 1.0),
    "fahrenheit": ("Fahrenheit", 1.0),
}


def measurand_base_unit(measurand: str) -> str:
    """The unit a value of `measurand` is in when the charger names none."""
    if measurand.startswith("Energy.Reactive"):
        return "varh"
    if measurand.startswith("Energy.Apparent"):
        return "VAh"
    if measurand.startswith("Energy"):
        return "Wh"
    if measurand.startswith("Power.Reactive"):
        return "var"
    if measurand.startswith("Power") and measurand != "Power.Factor":
        return "W"
    if measurand.startswith("Current"):
        return "A"
    if measurand.startswith("Voltage"):
        return "V"
    return {"Frequency": "Hz", "Temperature": "Celsius", "SoC": "Percent"}.get(measurand, "")


def number(value: object) -> float | None:
    """`value` as a finite float, or None."""
    try:
        parsed = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return parsed if math.isfinite(parsed) else None


def normalize(value: object, unit: str, multiplier: int = 0) -> tuple[float | None, str]:
    """(value × 10^multiplier in the unit without prefix, that unit)."""
    base, factor = _UNITS_EXACT.get(unit) or _UNITS.get(unit.lower(), (unit, 1.0))
    parsed = number(value)
    if parsed is None or abs(multiplier) > MAX_MULTIPLIER:
        return None, base
    result = parsed * factor * 10.0**multiplier
    return (result if math.isfinite(result) else None), base
