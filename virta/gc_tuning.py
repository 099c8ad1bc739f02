"""Garbage-collector settings for a server process that holds thousands of sockets.

CPython's full collection walks every container object the process holds: with
thousands of chargers connected its pauses were the latency tail (bench/RESULTS.md).
Two settings make them rare and short:

- `gc.freeze()` once the application is loaded: Django, the models, the OCPP schemas and
  the libraries live as long as the process and are never walked again.
- Higher thresholds (`GC_THRESHOLDS`): young objects (a frame's dicts, its futures) are
  collected in bigger, rarer batches, so fewer of them survive into the old generation
  that a full collection walks.

Reference cycles are still collected; they only wait a little longer.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)


def gc_tune(*, freeze: bool, thresholds: tuple[int, ...]) -> None:
    """Apply the settings above: call once, after the application is imported."""
    if thresholds:
        gc.set_threshold(*thresholds)
    if freeze:
        gc.collect()
        gc.freeze()
    logger.debug("GC thresholds %s, %d objects frozen", gc.get_threshold(), gc.get_freeze_count())
