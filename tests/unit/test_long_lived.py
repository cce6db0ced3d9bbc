"""A serving process keeps its start-up objects out of collections, and collects young ones less often."""

from __future__ import annotations

import gc

from entrypoints.long_lived import YOUNG_COLLECTION_EVERY, keep_for_life


def test_young_objects_are_collected_less_often_and_the_older_generations_as_before() -> None:
    before = gc.get_threshold()
    try:
        keep_for_life()
        assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, before[1], before[2])
        assert gc.get_freeze_count() > 0
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
