"""Fixtures for the gateway tests: a real Mosquitto, a real PostgreSQL (started here), journals on disk."""

from __future__ import annotations

import pytest

from tests.gateway import sip2_stub

STUBBED = sip2_stub.install()

from simulators.fleet.broker import Broker  # noqa: E402
from tests.gateway.pg import postgres_server  # noqa: E402,F401 - the session's PostgreSQL
from tests.support import require_binary  # noqa: E402


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "broker", binary=require_binary("mosquitto")).start()
    try:
        yield b
    finally:
        b.stop()
