"""Fixtures of the simulator tests (the leak guard is suite-wide, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from kiosk.config import Config, load_config
from simulators.bookcase import SimulatedBookcase
from tests.simulators.helpers import write_config


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path))


@pytest.fixture
def open_port() -> Iterator[Callable[..., serial.Serial]]:
    """Open a simulator link like a driver does (serial_for_url); closed after the test."""
    ports: list[serial.Serial] = []

    def _open(path: Path, baudrate: int = 19200, **kwargs) -> serial.Serial:
        port = serial.serial_for_url(str(path), baudrate=baudrate, timeout=0.05, **kwargs)
        ports.append(port)
        return port

    yield _open
    for port in ports:
        port.close()


@pytest.fixture
def make_sim(tmp_path: Path) -> Iterator[Callable[..., SimulatedBookcase]]:
    """Start a SimulatedBookcase in-process (links under tmp_path/sim); stopped after the test."""
    sims: list[SimulatedBookcase] = []

    def _make(cfg: Config | None = None, **opts) -> SimulatedBookcase:
        cfg = cfg or load_config(write_config(tmp_path))
        opts.setdefault("books_per_door", 5)
        sim = SimulatedBookcase(cfg, tmp_path / "sim", **opts)
        sims.append(sim)
        return sim.start()

    yield _make
    for sim in sims:
        sim.stop()
