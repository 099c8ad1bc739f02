"""The server processes' garbage-collector settings (virta/gc_tuning.py)."""

from __future__ import annotations

import gc

import pytest

from virta.gc_tuning import gc_tune


@pytest.fixture
def restore_gc():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_thresholds_are_set_and_loaded_objects_frozen(restore_gc):
    gc_tune(freeze=True, thresholds=(50000, 20, 100))
    assert gc.get_threshold() == (50000, 20, 100)
    # Everything loaded so far (this test run's modules) is out of the collector's walk.
    assert gc.get_freeze_count() > 10_000


def test_empty_settings_leave_python_defaults(restore_gc):
    before = gc.get_threshold()
    gc_tune(freeze=False, thresholds=())
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_asgi_entry_point_applies_the_settings(settings, restore_gc):
    import importlib

    import virta.asgi

    settings.GC_THRESHOLDS = (12345, 11, 12)
    importlib.reload(virta.asgi)
    assert gc.get_threshold() == (12345, 11, 12)
