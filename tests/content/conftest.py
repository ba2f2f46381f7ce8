"""Fixtures for the content tests: the library's site (a signed folder and its server) and a real Mosquitto."""

from __future__ import annotations

import pytest

from tests.content.site import Library
from tests.sync.conftest import broker  # noqa: F401 - the same real Mosquitto as the fleet tests


@pytest.fixture
def library(tmp_path):
    lib = Library(tmp_path / "site")
    try:
        yield lib
    finally:
        lib.server.close()
