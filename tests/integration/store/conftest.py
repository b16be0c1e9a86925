"""Every direct script test also checks that each script run kept to one cluster slot."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_slot(one_slot_per_script_run: None) -> None:
    """The check of tests/integration/conftest.py, for every test here."""
