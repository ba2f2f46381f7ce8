"""Fixtures for the gateway tests: a real Mosquitto, a real PostgreSQL (started here), journals on disk."""

from __future__ import annotations

import pytest

from simulators.fleet.broker import Broker
from tests.gateway.pg import postgres_server  # noqa: F401 - the session's PostgreSQL
from tests.support import require_binary


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker", binary=require_binary("mosquitto")).start()
    try:
        yield b
    finally:
        b.stop()
