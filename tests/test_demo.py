"""`make demo`'s story runs end to end (without pauses) and leaves the ledgers it narrates: alone and offline,
with the demo fleet (Mosquitto and a second bookcase), and in a real X window under Xvfb."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from kiosk.config import load_config
from kiosk.content.manifest import parse
from kiosk.content.schedule import playlist
from kiosk.store.ledger import Store
from tests.scenarios.harness import ROOT
from tests.support import require_binary

PEER = "MH-0102"


def _run_demo(tmp_path: Path, *args: str, env: dict | None = None) -> tuple[Path, str]:
    require_binary("ffmpeg")                        # the demo's screen content is drawn with it
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "demo.toml"
    shutil.copy(ROOT / "config" / "demo.toml", config)
    result = subprocess.run([sys.executable, "-m", "simulators.demo", "--config", str(config), "--pause", "0",
                             "--exit", *args], cwd=ROOT, capture_output=True, text=True, timeout=240,
                            env=env or {k: v for k, v in os.environ.items()
                                        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")})
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "door 2: receipt for card ****0018: borrowed 2, returned 0" in out
    assert "door 5: receipt for card ****0026: borrowed 0, returned 1" in out
    assert "Traceback" not in out
    assert not (tmp_path / "var" / "demo" / "sim" / "lockboard").exists()     # the simulators were stopped
    assert not list((tmp_path / "config").glob(".*.toml"))                     # nor a run config left behind
    _check_content(tmp_path, out)
    return config, out


def _check_content(tmp_path: Path, out: str) -> None:
    """The library's demo content was signed, served, installed, and its update (the new-book notice) too."""
    assert "no screen content" not in out
    assert "the notice is on the screen" in out
    current = tmp_path / "var" / "demo" / "data" / "content" / "current"
    manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
    source = json.loads((tmp_path / "var" / "demo" / "content-src" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["version"] == source["version"] and "new-books" in {i["id"] for i in manifest["items"]}
    assert {i["kind"] for i in manifest["items"]} == {"video", "image", "book", "qr"}
    # The notice shares the screen: today's playlist still holds the videos, with the notice among them.
    today = playlist(parse((current / "manifest.json").read_bytes()), datetime.now(ZoneInfo("Asia/Shanghai")))
    kinds = [i.kind for i in today]
    assert "new-books" in {i.id for i in today} and "video" in kinds


def _ledger(config: Path) -> tuple[list[dict], list[dict]]:
    cfg = load_config(config)
    store = Store(cfg.db_path, cfg.bookcase.id)
    try:
        return store.loans(), store.returns()
    finally:
        store.close()


def test_demo_alone_and_offline(tmp_path):
    config, out = _run_demo(tmp_path, "--offline", "--headless")
    assert "Mosquitto" not in out and "⇄ broker" not in out
    loans, returns = _ledger(config)
    assert len(loans) == 2 and {r["door"] for r in loans} == {2}
    (ret,) = returns
    assert ret["door"] == 5 and ret["item_id"] in {r["item_id"] for r in loans}
    assert sum(1 for r in loans if r["returned_at"]) == 1


def test_demo_fleet_borrows_here_and_returns_at_the_other_bookcase(tmp_path):
    require_binary("mosquitto")
    require_binary("mosquitto_passwd")
    config, out = _run_demo(tmp_path, "--headless")
    loans, returns = _ledger(config)
    assert len(loans) == 2 and all(r["returned_at"] for r in loans)      # one back here, one back at the peer
    (here,) = returns
    (elsewhere,) = {r["item_id"] for r in loans} - {here["item_id"]}
    peer = Store(tmp_path / "var" / "demo" / "fleet" / PEER / "data" / "kiosk.sqlite3", PEER)
    try:
        assert [r["item_id"] for r in peer.returns()] == [elsewhere]
        assert not peer.loans()
    finally:
        peer.close()
    assert f"return {elsewhere} (door 2)" in out and f"loan {elsewhere} (door 2)" in out   # the monitor saw both
    assert f"its loan of {elsewhere} is closed" in out
    assert "where else is" in out and f"{PEER} door" in out
    # The library's side: the gateway applied both loans and both returns to the simulated ILS over SIP2, once.
    for loan in loans:
        assert f"({loan['item_id']}) lent to card ****0018, due " in out
    assert "transactions` lists all 4 transactions the ILS applied, each once" in out
    # The operators' console: its address and the run's login printed, and the demo logged in and read both
    # bookcases off its fleet page.
    console = re.search(r"The operators' console at (http://127\.0\.0\.1:\d+/?) lists the fleet: (.*) \(log in as "
                        r"demo, password (\S+)\)", out)
    assert console, out[-3000:]
    assert console[2] == f"MH-0001, {PEER}"
    assert f"The operators' console: {console[1]}  (login: demo, password: {console[3]})" in out
    assert not (tmp_path / "config" / ".gateway-demo.run.toml").exists()


def test_make_demo_opens_a_real_window_when_there_is_a_display(tmp_path):
    xvfb = require_binary("Xvfb")
    display = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    server = subprocess.Popen([xvfb, f":{display}", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not Path(f"/tmp/.X11-unix/X{display}").exists():
            assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "WAYLAND_DISPLAY")}
        env.update(DISPLAY=f":{display}", SDL_AUDIODRIVER="dummy")
        _, out = _run_demo(tmp_path, "--offline", env=env)      # no --ui: a display is enough
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert "SDL video driver x11" in out
    assert "screen open" not in out                  # the demo's window, not `kiosk run`'s
    assert "kiosk.ui.screens.playlist: screen content: version" in out   # the library's content on its screen
