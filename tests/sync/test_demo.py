"""`python -m simulators.fleet --exit` tells its story and exits 0; `kiosk sync status` reads what it left."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.scenarios.harness import ROOT
from tests.support import require_binary


def test_fleet_demo_and_sync_status(tmp_path):
    require_binary("mosquitto")
    require_binary("mosquitto_passwd")
    workdir = tmp_path / "fleet"
    run = subprocess.run([sys.executable, "-m", "simulators.fleet", "--exit", "--pause", "0",
                          "--workdir", str(workdir)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Both ledgers agree." in run.stdout
    assert "loan MH2020" in run.stdout and "return MH2020" in run.stdout      # the monitor saw both on the wire

    status = subprocess.run([sys.executable, "-m", "kiosk", "sync", "status", "--json", "--config",
                             str(workdir / "MH-0102" / "bookcase.toml")], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["outbox_depth"] == 0 and st["sent"] > 0 and st["counters"]["events_applied"] >= 1
    assert [p["bookcase"] for p in st["peers"]] == ["MH-0101"]
    text = subprocess.run([sys.executable, "-m", "kiosk", "sync", "status", "--config",
                           str(workdir / "MH-0101" / "bookcase.toml")], cwd=ROOT, capture_output=True, text=True,
                          timeout=60).stdout
    assert "fleet link to 127.0.0.1:" in text and "refused messages: none" in text
