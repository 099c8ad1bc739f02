"""Meter values: what OCPP says a sample is when the charger does not say."""

from __future__ import annotations

# The measurand of a sampled value that names none (OCPP 1.6 and 2.x): the energy register.
ENERGY_REGISTER = "Energy.Active.Import.Register"
