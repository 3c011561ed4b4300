"""The collector pause shared by the loader and apply: off inside, restored after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from trunksync.collector import CollectorPause


@pytest.fixture(autouse=True)
def gc_setting() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    gc.unfreeze()
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled", [True, False])
def test_paused_inside_and_restored_after_even_on_error(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    with pytest.raises(RuntimeError), CollectorPause():
        assert not gc.isenabled()
        raise RuntimeError("boom")
    assert gc.isenabled() is enabled


@pytest.mark.parametrize("enabled", [True, False])
def test_resume_freezes_and_turns_back_only_what_was_on(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    with CollectorPause() as pause:
        pause.resume()
        assert gc.get_freeze_count() > 0
        assert gc.isenabled() is enabled
    assert gc.isenabled() is enabled


def test_a_nested_pause_leaves_the_collector_off_until_the_outer_one_ends() -> None:
    gc.enable()
    with CollectorPause():
        with CollectorPause():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
