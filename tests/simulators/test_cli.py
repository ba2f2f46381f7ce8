"""``kiosk-sim``: the world as a real subprocess, driven with ``kiosk-sim ctl``."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.drivers.scanner import codec as scan_codec
from simulators.cli import main
from tests.simulators.helpers import read_frame, write_config

KIOSK_SIM = Path(sys.executable).parent / "kiosk-sim"
START_WAIT_S = 20.0


def kiosk_sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(KIOSK_SIM), *args], capture_output=True, text=True, timeout=30)


class World:
    """A ``kiosk-sim world`` subprocess; ``lines`` holds what it printed so far."""

    def __init__(self, config: Path, link_dir: Path, *extra: str) -> None:
        self.link_dir = link_dir
        self.lines: list[str] = []
        self._partial = b""
        self.proc = subprocess.Popen([str(KIOSK_SIM), "world", "--config", str(config), "--link-dir", str(link_dir),
                                      "--books-per-door", "5", "--air-ms", "0", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + START_WAIT_S
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                self._partial += chunk
                *complete, self._partial = self._partial.split(b"\n")
                self.lines += [line.decode("utf-8") for line in complete]
        raise AssertionError(f"kiosk-sim world never printed {text!r}; got {self.lines}")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=15)
        self.lines += (self._partial + out).decode("utf-8").splitlines()
        self._partial = b""
        return self.proc.returncode, err.decode("utf-8")


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    world = World(write_config(tmp_path), tmp_path / "sim")
    try:
        world.wait_for("control ready")
        yield world
    finally:
        world.stop()


def test_world_comes_up_serves_ctl_and_cleans_up(world: World, tmp_path: Path, open_port, capsys) -> None:
    link_dir = world.link_dir
    for device in ("lockboard", "rfid", "scanner"):
        assert world.wait_for(f"{device} ready: {link_dir / device} -> /dev/pts/")
        assert (link_dir / device).is_symlink()

    result = kiosk_sim("ctl", str(link_dir), "take", "--door", "2", "--item", "MH20200006")
    assert result.returncode == 1
    assert result.stderr == "kiosk-sim: error: door 2 is closed — unlock it first\n"

    assert main(["ctl", str(link_dir), "force", "--door", "2"]) == 0
    assert main(["ctl", str(link_dir), "take", "--door", "2", "--item", "MH20200006"]) == 0
    assert main(["ctl", str(link_dir), "put", "--door", "2", "--junk"]) == 0
    assert main(["ctl", str(link_dir), "flaky", "--item", "MH20200007"]) == 0
    assert main(["ctl", str(link_dir), "close", "--door", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "door 2 forced open (5 items behind it)"
    assert out[1].startswith("took MH20200006 《")
    assert out[2].startswith("put a foreign tag E007")
    assert out[3].endswith("is flaky now")
    assert out[4] == "door 2 closed (5 items behind it)"

    port = open_port(link_dir / "scanner", 9600)
    assert main(["ctl", str(link_dir), "scan", "3101120000018"]) == 0
    assert read_frame(port, scan_codec.decode).text == "3101120000018"

    assert main(["ctl", str(link_dir), "unplug", "rfid"]) == 0
    assert not (link_dir / "rfid").exists()
    assert main(["ctl", str(link_dir), "replug", "rfid"]) == 0
    assert (link_dir / "rfid").is_symlink()
    assert main(["ctl", str(link_dir), "garble", "lockboard"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "lockboard: plugged in, garble"

    status = kiosk_sim("ctl", str(link_dir), "status")
    assert status.returncode == 0
    state = json.loads(status.stdout)
    assert state["bookcase"] == "MH-TEST" and state["outside"] == ["MH20200006"]
    assert state["devices"]["lockboard"]["faults"] == ["garble"]
    assert state["stats"]["scanner"]["frames_out"] == 1

    world.wait_for("ctl: status -> ok")
    assert "ctl: take door=2 item=MH20200006 -> error: door 2 is closed — unlock it first" in world.lines
    assert "world: door 2 forced open" in world.lines
    port.close()
    code, err = world.stop()
    assert code == 0, err
    assert world.lines[-1] == "stopped: links and control socket removed"
    assert sorted(os.listdir(link_dir)) == []


def test_usage_errors_exit_2(tmp_path: Path, capsys) -> None:
    for argv in (["ctl", str(tmp_path), "take", "--door", "two", "--item", "X"],
                 ["ctl", str(tmp_path), "put", "--door", "1"],
                 ["ctl", str(tmp_path), "garble", "toaster"],
                 ["world", "--link-dir", str(tmp_path)]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    capsys.readouterr()


def test_ctl_without_a_running_simulator(tmp_path: Path, capsys) -> None:
    assert main(["ctl", str(tmp_path), "status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kiosk-sim: error: no simulator is running at") and err.count("\n") == 1


def test_world_with_a_bad_config(tmp_path: Path) -> None:
    result = kiosk_sim("world", "--config", str(tmp_path / "missing.toml"), "--link-dir", str(tmp_path / "sim"))
    assert result.returncode == 1
    assert result.stderr == f"kiosk-sim: error: {tmp_path / 'missing.toml'}: file not found\n"


def test_help_shows_examples() -> None:
    result = kiosk_sim("--help")
    assert result.returncode == 0 and "kiosk-sim world --config" in result.stdout
    result = kiosk_sim("ctl", "--help")
    assert "put --door 2 --junk" in result.stdout and "garble" in result.stdout
