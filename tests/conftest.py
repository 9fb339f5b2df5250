"""Shared fixtures."""

from __future__ import annotations

import pytest

from climb.data.runs import RunTable, read_regmix


@pytest.fixture(scope="session")
def regmix_train() -> RunTable:
    """The 512 RegMix 1M-parameter training runs (17 sources, 13 targets)."""
    return read_regmix("train", "1m")
