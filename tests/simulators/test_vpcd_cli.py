"""``kiosk-sim ctl DIR tap``: a running ``kiosk-sim world`` presents the virtual card to the real pcscd/vpcd."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.drivers.pcsc.device import CardReader
from simulators.cli import main
from tests.pcsc_support import Vpcd
from tests.simulators.helpers import write_config
from tests.simulators.test_cli import World

UID = "04A224B2C35E80"


@pytest.fixture
def world(vpcd: Vpcd, tmp_path: Path) -> Iterator[World]:
    world = World(write_config(tmp_path), tmp_path / "sim", "--vpcd-port", str(vpcd.pcscd.port))
    try:
        world.wait_for("control ready")
        yield world
    finally:
        world.stop()


def test_ctl_tap_reaches_the_driver_and_says_what_the_reader_did(world: World, vpcd: Vpcd, capsys) -> None:
    link_dir = str(world.link_dir)
    assert main(["ctl", link_dir, "tap", UID, "--hold", "0.3"]) == 0
    assert "read its UID 0 times (is the daemon running with [pcsc] enabled = true?)" in capsys.readouterr().out

    cards: queue.Queue[str] = queue.Queue()
    driver = CardReader(vpcd.reader, on_card=cards.put)
    try:
        driver.start()
        assert driver.wait_ready(10)
        assert main(["ctl", link_dir, "tap", UID, "--hold", "0.3"]) == 0
        out = capsys.readouterr().out
        assert f"tapped card {UID} for 0.3 s: the reader noticed it after" in out and "read its UID 1 time\n" in out
        assert cards.get(timeout=10) == UID

        assert main(["ctl", link_dir, "tap", "A1B2C3D4", "--error", "6A81"]) == 0
        assert "read its UID 1 time" in capsys.readouterr().out
        assert main(["ctl", link_dir, "tap", "11223344", "--slow", "200"]) == 0
        assert cards.get(timeout=10) == "11223344"          # the 6A 81 card before it was not a tap
        assert cards.empty()
    finally:
        driver.close()
    assert world.wait_for(f"world: card {UID} presented to the vpcd reader")
    assert world.wait_for("answers GET UID with 6A 81 (function not supported)")


def test_ctl_tap_refuses_a_bad_uid_and_a_bad_status_word(world: World, capsys) -> None:
    assert main(["ctl", str(world.link_dir), "tap", "XYZ"]) == 1
    assert "kiosk-sim: error: a card UID is hex like 04A224B2C35E80, got 'XYZ'" in capsys.readouterr().err
    assert main(["ctl", str(world.link_dir), "tap", UID, "--error", "1234"]) == 1
    assert "status word '1234' is not SW1 SW2" in capsys.readouterr().err
