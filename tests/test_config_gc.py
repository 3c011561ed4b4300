"""Loading pauses the cyclic garbage collector (a speed-up) and always restores it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import SECRET_ENV, TWO_TRUNKS, write
from trunksync.config import load_desired
from trunksync.errors import ConfigError


@pytest.fixture
def gc_setting() -> Iterator[None]:
    was_enabled = gc.isenabled()
    yield
    if was_enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.usefixtures("gc_setting")
@pytest.mark.parametrize("enabled", [True, False])
def test_load_restores_the_gc_setting(isolated: Path, enabled: bool) -> None:
    path = write(isolated / "trunks.yaml", TWO_TRUNKS)
    if enabled:
        gc.enable()
    else:
        gc.disable()
    assert len(load_desired(path, SECRET_ENV).trunks) == 2
    assert gc.isenabled() is enabled


@pytest.mark.usefixtures("gc_setting")
def test_load_restores_the_gc_after_an_error(isolated: Path) -> None:
    path = write(isolated / "trunks.yaml", "version: 1\ntrunks: [\n")
    gc.enable()
    with pytest.raises(ConfigError):
        load_desired(path, {})
    assert gc.isenabled()
