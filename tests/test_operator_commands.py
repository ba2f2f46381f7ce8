"""Operator commands that must not mislead: check-config reports every mistake and warns about what looks wrong
for a real bookcase; staff add asks for the PIN twice (through a real terminal) and says when it changes one;
staff list; an intent prints the state after it."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import load_config
from kiosk.core.policy import patron_key
from kiosk.core.staff import check_pin
from kiosk.store.ledger import Store
from tests.scenarios.harness import ADULT, Bookcase, wait_for, write_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.toml"


def _copy_of_demo(tmp_path: Path, edit=lambda text: text) -> Path:
    path = tmp_path / "citybook.toml"
    path.write_text(edit(DEMO.read_text(encoding="utf-8")), encoding="utf-8")
    return path


# --- check-config ---------------------------------------------------------------------------------------------

def test_check_config_reports_every_mistake_at_once_naming_doors_by_number(tmp_path, capsys):
    path = _copy_of_demo(tmp_path, lambda t: t.replace('secret = "demo-secret-not-for-production"', 'secret = "x"')
                         .replace("lock = 6\n", "lock = 17\n").replace("unlock_pulse_ms = 500", "unlock_pulse_ms = 5")
                         .replace("[scanner]", "[scanner]\nbaud = 9600").replace("loan_days = 30", "loan_days = 0"))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "5 mistake(s)" in err
    for words in ("secret: must be at least 16 characters", "door 6: lock: 17 is out of range 1..16",
                  "lockboard.unlock_pulse_ms: 5 is out of range", "scanner.baud: unknown key",
                  "policy.loan_days: 0 is out of range"):
        assert words in err, words
    assert "doors[" not in err


def test_the_daemon_also_lists_every_mistake(tmp_path):
    path = _copy_of_demo(tmp_path, lambda t: t.replace("lock = 6\n", "lock = 17\n").replace("loan_days = 30",
                                                                                             "loan_days = 0"))
    proc = subprocess.run([sys.executable, "-m", "kiosk", "run", "--headless", "--config", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "door 6: lock" in proc.stderr and "policy.loan_days" in proc.stderr and "2 problems" in proc.stderr


def test_a_copy_of_the_demo_config_for_a_real_bookcase_is_warned_about(tmp_path, capsys):
    path = _copy_of_demo(tmp_path, lambda t: t.replace('port = "../var/demo/sim/lockboard"', 'port = "/dev/ttyUSB7"')
                         .replace("baudrate = 38400", "baudrate = 12345"))
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    for words in ("lockboard.port: /dev/ttyUSB7 does not exist", "rfid.baudrate: 12345 is not a standard serial rate",
                  "secret: this is the demo's published secret", "ecard.key: this is the demo's published secret",
                  "demo.seed: true loads the demo's patrons", "data_dir: '../var/demo/data' is relative"):
        assert any(words in w for w in warnings), words
    assert "ok, with" in captured.out
    assert main(["check-config", "--strict", str(path)]) == 3


def test_a_real_bookcase_config_has_no_warnings(tmp_path, capsys):
    port = tmp_path / "ttyS0"
    port.touch()
    secret_free = _copy_of_demo(tmp_path, lambda t: t.replace("demo-secret-not-for-production", "library-secret-2026-xyz")
                                .replace("demo-ecard-key-not-for-production", "library-ecard-key-2026-xyz")
                                .replace("seed = true", "seed = false")
                                .replace('data_dir = "../var/demo/data"', f'data_dir = "{tmp_path / "data"}"')
                                .replace('"../var/demo/sim/lockboard"', f'"{port}"')
                                .replace('"../var/demo/sim/rfid"', f'"{port}"')
                                .replace('"../var/demo/sim/scanner"', f'"{port}"'))
    assert main(["check-config", "--strict", str(secret_free)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and ": ok — bookcase MH-0001" in captured.out


# --- staff cards ------------------------------------------------------------------------------------------------

def _in_a_terminal(argv: list[str], answers: list[str], timeout_s: float = 30.0) -> tuple[int, str]:
    """Run a command with a pseudo-terminal as its controlling terminal; answer each prompt in turn."""
    master, slave = os.openpty()

    def controlling_tty() -> None:
        os.setsid()
        import fcntl
        import termios
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, preexec_fn=controlling_tty)
    os.close(slave)
    output, pending, deadline = b"", list(answers), time.monotonic() + timeout_s
    answered_at = 0                                      # where the output stood when the last answer went in
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
                if pending and output[answered_at:].rstrip().endswith(b":"):
                    os.write(master, pending.pop(0).encode() + b"\n")
                    answered_at = len(output)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=10)
    finally:
        os.close(master)
    return code, output.decode(errors="replace")


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path, doors=2)


def _kiosk(*args: str) -> list[str]:
    return [sys.executable, "-m", "kiosk", *args]


def test_staff_add_asks_twice_says_changed_and_list_shows_no_pins(config):
    card = "04A1B2C3D4E5F6"
    code, out = _in_a_terminal(_kiosk("staff", "add", "--config", str(config), "--card", card, "--name", "张老师"),
                               ["2468", "2468"])
    assert code == 0, out
    assert "PIN (4-8 digits):" in out and "the same PIN again:" in out and "registered for 张老师" in out
    assert "2468" not in out                                          # not echoed
    code, out = _in_a_terminal(_kiosk("staff", "add", "--config", str(config), "--card", card), ["1357", "1357"])
    assert code == 0 and "changed: new PIN" in out
    code, out = _in_a_terminal(_kiosk("staff", "add", "--config", str(config), "--card", card), ["9999", "9998"])
    assert code == 2 and "the two PINs differ; nothing changed" in out
    cfg = load_config(config)
    store = Store(cfg.db_path, cfg.bookcase.id)
    try:
        stored = store.staff_pin_hash(patron_key(cfg.secret, card))
        assert check_pin("1357", stored) and not check_pin("9999", stored)
    finally:
        store.close()
    listing = subprocess.run(_kiosk("staff", "list", "--config", str(config)), capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout
    assert "1 staff card(s)" in listing and "****E5F6" in listing
    assert "pbkdf2" not in listing and stored not in listing and "1357" not in listing


# --- intents ----------------------------------------------------------------------------------------------------

def test_intent_prints_the_state_after_the_command(tmp_path, capsys):
    case = Bookcase(tmp_path).start()
    try:
        case.sim.scan(ADULT)                                   # a card first: the patron is choosing a door
        wait_for(lambda: case.app.snapshot.state == "choosing", 10, "the card read")
        capsys.readouterr()
        assert main(["intent", "--config", str(case.config_path), "door", "2"]) == 0
        import json
        reply = json.loads(capsys.readouterr().out)
        assert reply["snapshot"]["state"] == "door_open" and reply["snapshot"]["door"] == 2
        wait_for(lambda: case.seen_open(2), 10, "the door")
        case.sim.close(2)
        wait_for(lambda: case.settled_sessions(), 30, "the session")
    finally:
        case.stop()
