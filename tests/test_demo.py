"""`make demo`'s scenario runs end to end (without pauses) and leaves the ledger it narrates."""

from __future__ import annotations

import shutil
import subprocess
import sys

from kiosk.config import load_config
from kiosk.store.ledger import Store
from tests.scenarios.harness import ROOT


def test_demo_scenario(tmp_path):
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "demo.toml"
    shutil.copy(ROOT / "config" / "demo.toml", config)
    result = subprocess.run([sys.executable, "-m", "simulators.demo", "--config", str(config), "--pause", "0",
                             "--exit"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "door 2: receipt for card ****0018: borrowed 2, returned 0" in out
    assert "door 5: receipt for card ****0026: borrowed 0, returned 1" in out
    assert "Traceback" not in out
    cfg = load_config(config)
    store = Store(cfg.db_path, cfg.bookcase.id)
    try:
        loans = store.loans()
        assert len(loans) == 2 and {r["door"] for r in loans} == {2}
        (ret,) = store.returns()
        assert ret["door"] == 5 and ret["item_id"] in {r["item_id"] for r in loans}
        assert sum(1 for r in loans if r["returned_at"]) == 1
    finally:
        store.close()
    assert not (tmp_path / "var" / "demo" / "sim" / "lockboard").exists()
