"""``kiosk-sim ils`` as a real subprocess, driven with ``kiosk-sim ctl DIR …`` / ``kiosk-sim ils-ctl DIR …``."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sip2 import Sip2Client, Sip2LoginRefused, Sip2Lost, Sip2Unavailable

KIOSK_SIM = Path(sys.executable).parent / "kiosk-sim"
START_WAIT_S = 20.0
ADULT, BOOK = "3101120000018", "MH20200001"


def kiosk_sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(KIOSK_SIM), *args], capture_output=True, text=True, timeout=30)


class Ils:
    """A ``kiosk-sim ils`` subprocess on a free port."""

    def __init__(self, link_dir: Path, *extra: str) -> None:
        self.link_dir = link_dir
        self.lines: list[str] = []
        self._partial = b""
        self.proc = subprocess.Popen([str(KIOSK_SIM), "ils", "--port", "0", "--link-dir", str(link_dir), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready = self.wait_for("simulated ILS ready")
        self.port = int(re.search(r":(\d+) ", ready)[1])
        self.wait_for("control ready")

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + START_WAIT_S
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if select.select([fd], [], [], 0.2)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                self._partial += chunk
                *complete, self._partial = self._partial.split(b"\n")
                self.lines += [line.decode("utf-8") for line in complete]
        raise AssertionError(f"kiosk-sim ils never printed {text!r}; got {self.lines}, "
                             f"stderr {self.proc.stderr.read() if self.proc.poll() is not None else ''}")

    def ctl(self, *args: str, via: str = "ctl") -> subprocess.CompletedProcess:
        return kiosk_sim(via, str(self.link_dir), *args)

    def json(self, *args: str) -> object:
        done = self.ctl(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, out.decode() + err.decode()


@pytest.fixture
def ils(tmp_path: Path) -> Iterator[Ils]:
    secret = tmp_path / "sip2-password"
    secret.write_text("from-a-file\n")
    sim = Ils(tmp_path / "ils", "--password-file", str(secret), "--latency-ms", "2", "--timeout-period", "999")
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def client(ils: Ils) -> Iterator[Sip2Client]:
    c = Sip2Client("127.0.0.1", ils.port, user="citybook", password="from-a-file", timeout_s=5)
    try:
        yield c
    finally:
        c.close()


def test_help_says_how_to_run_and_drive_it():
    done = kiosk_sim("ils", "--help")
    assert done.returncode == 0
    for text in ("--port", "--link-dir", "--latency-ms", "--charset", "--user", "--password-file", "examples:",
                 "kiosk-sim ils-ctl var/demo/ils status", "ZB"):
        assert text in done.stdout, text
    ctl = kiosk_sim("ils-ctl", "--help")
    assert ctl.returncode == 0 and "drop --kind checkout" in ctl.stdout
    assert "ils" in kiosk_sim("--help").stdout


def test_a_loan_over_sip2_shows_in_status_and_transactions(ils, client):
    client.connect()
    assert client.checkout(ADULT, BOOK).ok
    status = ils.json("status")
    assert [(loan["item"], loan["patron"]) for loan in status["loans"]] == [(BOOK, ADULT)]
    adult = next(p for p in status["patrons"] if p["id"] == ADULT)
    assert adult["loans"] == 1 and adult["limit"] == 15
    assert status["logins"] == 1 and status["requests"]["11"] == 1 and status["up"]
    transactions = json.loads(ils.ctl("transactions", via="ils-ctl").stdout)
    assert [(t["kind"], t["item"], t["patron"], t["via"]) for t in transactions] == [("checkout", BOOK, ADULT,
                                                                                      "sip2")]
    marker = json.loads((ils.link_dir / "ils.json").read_text())
    assert marker["port"] == ils.port and marker["kind"] == "ils"


def test_desk_transactions_blocks_and_holds(ils, client):
    assert ils.json("checkout", ADULT, "MH20200002")["due"]
    assert ils.json("block", "3101120000026") == {"patron": "3101120000026", "status": "blocked"}
    done = ils.ctl("checkout", "3101120000026", "MH20200003")
    assert done.returncode == 1 and "Patron blocked" in done.stderr
    assert ils.json("hold", "3101120000059", "MH20200002")["hold_for"] == "3101120000059"
    client.connect()
    back = client.checkin("MH20200002")
    assert back.ok and back.alert and back.alert_type == "01"
    assert client.patron_status("3101120000026").flag(0)
    assert ils.json("unblock", "3101120000026")["status"] == "active"
    missing = ils.ctl("block", "nobody")
    assert missing.returncode == 1 and "no patron nobody" in missing.stderr
    assert ils.json("add-item", "MH20209001", "--title", "東京物語")["title"] == "東京物語"
    assert client.item_information("MH20209001").title == "東京物語"


def test_faults_from_the_command_line(ils, client):
    client.connect()
    assert ils.json("drop", "--kind", "checkout")["drop_kind"] == "11"
    with pytest.raises(Sip2Lost):
        client.checkout(ADULT, BOOK)
    assert ils.ctl("heal").stdout.strip() == "healed"
    client.connect()
    assert client.item_information(BOOK).patron_id == ADULT
    ils.json("refuse", "--item", "MH20200002", "--message", "Item withdrawn")
    refused = client.checkout(ADULT, "MH20200002")
    assert not refused.ok and refused.screen_message == "Item withdrawn"
    assert ils.json("badsum", "1")["badsum_next"] == 1
    assert client.item_information(BOOK).ok
    assert ils.ctl("down").stdout.strip() == "down"
    client.close()
    with pytest.raises(Sip2Unavailable):
        client.connect()
    assert ils.ctl("up").stdout.strip() == "up"
    client.connect()
    assert client.item_information(BOOK).patron_id == ADULT


def test_a_wrong_password_and_a_busy_port(ils, tmp_path):
    wrong = Sip2Client("127.0.0.1", ils.port, user="citybook", password="sip2-password")
    with pytest.raises(Sip2LoginRefused):
        wrong.connect()
    done = kiosk_sim("ils", "--port", str(ils.port), "--link-dir", str(tmp_path / "other"))
    assert done.returncode == 1 and f"cannot listen on 127.0.0.1:{ils.port}" in done.stderr


def test_sigterm_stops_it_and_removes_its_files(tmp_path):
    sim = Ils(tmp_path / "ils")
    code, output = sim.stop()
    assert code == 0 and "stopped" in output
    assert not (tmp_path / "ils" / "ils.json").exists() and not (tmp_path / "ils" / "control.sock").exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", sim.port), timeout=2).close()
    done = kiosk_sim("ils-ctl", str(tmp_path / "ils"), "status")
    assert done.returncode == 1 and "no simulator is running" in done.stderr
