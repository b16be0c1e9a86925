"""The long-running processes freeze their start-up heap and collect young objects rarely."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from worker.gctune import GEN0_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_tuning_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    gen1, gen2 = gc.get_threshold()[1:]
    tune_gc()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (GEN0_THRESHOLD, gen1, gen2)
