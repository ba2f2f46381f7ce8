"""Each driver against its simulator over real ptys, clean and under every fault the simulator injects."""

from __future__ import annotations

import threading

import pytest

from kiosk.config import load_config
from kiosk.demodata import uid_for
from kiosk.drivers.errors import DeviceTimeout, DeviceUnavailable
from kiosk.drivers.lockboard.device import LockBoard
from kiosk.drivers.rfid.device import RfidBus
from kiosk.drivers.rfid.tag import decode_tag
from kiosk.drivers.scanner.device import Scanner
from simulators.bookcase import SimulatedBookcase
from tests.scenarios.harness import wait_for
from tests.simulators.helpers import write_config

BOOKS = 30          # more than one FEIG frame holds: inventory pages through STATUS 0x94


class Links:
    """Records on_link calls from a driver."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.lock = threading.Lock()

    def __call__(self, up: bool, message: str) -> None:
        assert message                               # an operator always gets words, not just a flag
        with self.lock:
            self.calls.append(up)


@pytest.fixture
def sim(tmp_path):
    cfg = load_config(write_config(tmp_path, doors=2))
    bookcase = SimulatedBookcase(cfg, tmp_path / "sim", books_per_door=BOOKS, air_ms=0.5, seed=7).start()
    yield bookcase
    bookcase.stop()


def make_bus(sim, timeout_s):
    links = Links()
    bus = RfidBus(str(sim.paths["rfid"]), timeout_s=timeout_s, retries=5, on_link=links, reconnect_interval_s=0.1)
    bus.links = links
    bus.start()
    return bus


@pytest.fixture
def rfid(sim):
    # One byte per 20 ms ("slow") makes a 247-byte inventory frame take 5 s: a generous timeout.
    bus = make_bus(sim, timeout_s=10)
    yield bus
    bus.close()


@pytest.fixture
def quick_rfid(sim):
    bus = make_bus(sim, timeout_s=0.3)
    yield bus
    bus.close()


@pytest.fixture
def board(sim):
    links = Links()
    lb = LockBoard(str(sim.paths["lockboard"]), boards=[0], poll_interval_s=0.05, timeout_s=0.2, retries=5,
                   on_link=links, reconnect_interval_s=0.1)
    lb.links = links
    lb.start()
    yield lb
    lb.close()


def world_uids(sim, door):
    (info,) = [d for d in sim.status()["doors"] if d["door"] == door]
    return {uid_for(item) for item in info["items"]}, info["items"]


@pytest.mark.parametrize("fault", [None, "garble", "slow"])
def test_rfid_inventory_and_tag_memory(sim, rfid, fault):
    if fault:
        sim.fault("rfid", fault)
    uids, items = world_uids(sim, 1)
    assert {t.uid for t in rfid.inventory(1)} == uids
    item = items[0]
    tag, _reversed = decode_tag(rfid.read_tag(1, uid_for(item)))
    assert tag.item_id == item


def test_rfid_silence_then_heal(sim, quick_rfid):
    rfid = quick_rfid
    sim.silence("rfid")
    with pytest.raises(DeviceTimeout):
        rfid.inventory(2)
    sim.heal("rfid")
    assert {t.uid for t in rfid.inventory(2)} == world_uids(sim, 2)[0]


def test_rfid_unplug_and_replug(sim, quick_rfid):
    rfid = quick_rfid
    wait_for(lambda: rfid.links.calls[-1:] == [True], 5, "the first connection")
    sim.unplug("rfid")
    wait_for(lambda: rfid.links.calls[-1:] == [False], 5, "the link to drop")
    with pytest.raises(DeviceUnavailable):
        rfid.inventory(1)
    sim.replug("rfid")
    wait_for(lambda: rfid.links.calls[-1:] == [True], 5, "the link to come back")
    assert {t.uid for t in rfid.inventory(1)} == world_uids(sim, 1)[0]


@pytest.mark.parametrize("fault", [None, "garble", "slow"])
def test_lockboard_unlock_and_sensors(sim, board, fault):
    if fault:
        sim.fault("lockboard", fault)
    state = board.unlock(0, 2)
    assert not state[2].locked and state[1].locked
    wait_for(lambda: board.read_state(0)[2].door_open, 5, "door 2 to pop open")
    sim.close(2)
    assert not board.read_state(0)[2].door_open


def test_lockboard_silence_and_unplug(sim, board):
    sim.silence("lockboard")
    with pytest.raises(DeviceTimeout):
        board.read_state(0)
    sim.heal("lockboard")
    assert board.read_state(0)[1].locked
    sim.unplug("lockboard")
    wait_for(lambda: board.links.calls[-1:] == [False], 5, "the link to drop")
    with pytest.raises(DeviceUnavailable):
        board.unlock(0, 1)
    sim.replug("lockboard")
    wait_for(lambda: board.links.calls[-1:] == [True], 5, "the link to come back")
    assert not board.unlock(0, 1)[1].locked


def test_scanner_lines_garble_and_replug(sim):
    scans, bad, links = [], [], Links()
    scanner = Scanner(str(sim.paths["scanner"]), on_scan=scans.append, on_bad_line=bad.append, on_link=links,
                      reconnect_interval_s=0.1)
    scanner.start()
    try:
        wait_for(lambda: links.calls[-1:] == [True], 5, "the scanner port")
        sim.scan("3101120000018")
        wait_for(lambda: scans == ["3101120000018"], 5, "the scan")
        sim.garble("scanner")
        sim.scan("3101120000026")
        wait_for(lambda: bad, 5, "a bad line")
        assert scans == ["3101120000018"]          # a garbled scan never passes for a card number
        sim.heal("scanner")
        sim.unplug("scanner")
        wait_for(lambda: links.calls[-1:] == [False], 5, "the link to drop")
        sim.replug("scanner")
        wait_for(lambda: links.calls[-1:] == [True], 5, "the link to come back")
        sim.scan("3101120000034")
        wait_for(lambda: scans[-1:] == ["3101120000034"], 5, "the scan after replug")
    finally:
        scanner.close()
