"""Fixtures for the fleet tests: a real Mosquitto on a free port (a missing broker fails the test)."""

from __future__ import annotations

import pytest

from simulators.fleet.broker import Broker
from tests.support import require_binary


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker", binary=require_binary("mosquitto")).start()
    try:
        yield b
    finally:
        b.stop()
