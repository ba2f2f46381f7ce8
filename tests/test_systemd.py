"""The unit file passes systemd-analyze verify, and the daemon speaks sd_notify to a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from kiosk.sdnotify import Notifier
from tests.scenarios.harness import ROOT, write_config
from tests.support import require_binary
from simulators.bookcase import SimulatedBookcase
from kiosk.config import load_config

UNIT = ROOT / "systemd" / "citybook-kiosk.service"


def test_unit_file_verifies(tmp_path):
    analyze = require_binary("systemd-analyze")
    # The unit names the image's install path; point it at this checkout's virtualenv to verify it here.
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/citybook/venv", str(Path(sys.executable).parent.parent)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict"):
        assert line in text


def test_gateway_unit_file_verifies(tmp_path):
    analyze = require_binary("systemd-analyze")
    source = ROOT / "systemd" / "citybook-gateway.service"
    unit = tmp_path / source.name
    unit.write_text(source.read_text().replace("/opt/citybook/venv", str(Path(sys.executable).parent.parent)))
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "citybook-gateway").exists():      # an older install of the project: the script comes with
        script = tmp_path / "citybook-gateway"             # the next bootstrap; verify against a stand-in
        script.write_text(f"#!{sys.executable}\nfrom gateway.cli import main\nraise SystemExit(main())\n")
        script.chmod(0o755)
        unit.write_text(unit.read_text().replace(str(bin_dir / "citybook-gateway"), str(script)))
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    text = source.read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=always", "NoNewPrivileges=yes", "ProtectSystem=strict",
                 "citybook-gateway run --config /etc/citybook/gateway.toml"):
        assert line in text


def _receiver(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock, path


def _drain(sock, seconds):
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
    return got


def test_notifier_pings_at_half_the_watchdog_interval(tmp_path):
    sock, path = _receiver(tmp_path)
    with sock:
        n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        assert n.watchdog_interval_s == 1.0
        n.ready("serving 6 doors")
        n.watchdog(now=100.0)
        n.watchdog(now=100.5)            # too soon: no second ping
        n.watchdog(now=101.1)
        n.close()
        assert _drain(sock, 0.3) == ["READY=1\nSTATUS=serving 6 doors", "WATCHDOG=1", "WATCHDOG=1"]
    assert not Notifier({}).enabled and Notifier({}).notify("READY=1") is False
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"}).watchdog_interval_s is None


def test_daemon_reports_ready_and_feeds_the_watchdog(tmp_path):
    cfg = load_config(write_config(tmp_path, doors=1))
    sock, path = _receiver(tmp_path)
    with sock, SimulatedBookcase(cfg, tmp_path / "sim", books_per_door=3, air_ms=1):
        env = {**os.environ, "NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"}
        proc = subprocess.Popen([sys.executable, "-m", "kiosk", "run", "--config", str(tmp_path / "bookcase.toml"),
                                 "--headless"],
                                env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            got = _drain(sock, 4.0)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        got += _drain(sock, 0.5)
    assert any(m.startswith("READY=1") for m in got), got
    assert got.count("WATCHDOG=1") >= 3, got
    assert "STOPPING=1" in got
    assert proc.returncode == 0


IMAGE_UNITS = ("citybook-setup.service", "citybook-growdata.service", "citybook-logcopy.service",
               "citybook-logcopy.timer", "citybook-sim.service", "citybook-bootcheck.service")


def test_the_images_units_verify(tmp_path):
    """The SD image's own units (systemd/image/build.sh installs them), against this checkout's scripts."""
    analyze = require_binary("systemd-analyze")
    scripts = ROOT / "systemd" / "image" / "rootfs" / "usr" / "lib" / "citybook"
    for name in IMAGE_UNITS:
        text = (ROOT / "systemd" / name).read_text()
        (tmp_path / name).write_text(text.replace("/usr/lib/citybook/", f"{scripts}/")
                                     .replace("/opt/citybook/venv", str(Path(sys.executable).parent.parent)))
    result = subprocess.run([analyze, "verify", *(str(tmp_path / n) for n in IMAGE_UNITS if n.endswith(".service"))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    setup = (ROOT / "systemd" / "citybook-setup.service").read_text()
    assert "Before=citybook-kiosk.service" in setup and "Type=oneshot" in setup
    dropin = (ROOT / "systemd" / "image" / "rootfs" / "etc" / "systemd" / "system" / "citybook-kiosk.service.d"
              / "image.conf").read_text()
    assert "Requires=citybook-setup.service" in dropin        # an invalid config keeps the kiosk stopped
    watchdog = (ROOT / "systemd" / "image" / "rootfs" / "etc" / "systemd" / "system.conf.d" / "citybook.conf")
    assert "RuntimeWatchdogSec=15s" in watchdog.read_text()   # bcm2835_wdt's longest timeout is about 16 s
    assert "Environment=SDL_VIDEODRIVER=kmsdrm" in UNIT.read_text()
