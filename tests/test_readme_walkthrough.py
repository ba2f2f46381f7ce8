"""The README's by-hand walkthrough, run command by command against a headless `make demo` (read from the README
itself, so it cannot drift); the status commands read the running demo's config; pcscd is there for the
contactless card; a SIGKILLed demo takes its children with it, and a stale demo is found at the next start."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulators.children import PidFile
from tests.scenarios.harness import ROOT, wait_for
from tests.support import require_binary

README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent


def walkthrough() -> list[str]:
    text = README.read_text(encoding="utf-8")
    block = text[text.index("<!-- by-hand walkthrough: begin -->"):text.index("<!-- by-hand walkthrough: end -->")]
    lines = [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith(".venv/bin/")]
    assert len(lines) >= 8
    return lines


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}


@pytest.fixture
def demo(tmp_path):
    require_binary("ffmpeg")
    require_binary("mosquitto")
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "demo.toml"
    shutil.copy(ROOT / "config" / "demo.toml", config)
    log = open(tmp_path / "demo.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "simulators.demo", "--config", str(config), "--headless",
                             "--pause", "0"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=_env())
    try:
        wait_for(lambda: "The bookcase keeps running" in (tmp_path / "demo.log").read_text() or proc.poll() is not None,
                 240, "the demo's story to end")
        assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
        yield tmp_path, config, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _run(command: str, tmp_path: Path, config: Path) -> subprocess.CompletedProcess:
    argv = command.replace("config/demo.toml", str(config)).replace("var/demo/sim", str(tmp_path / "var/demo/sim"))
    argv = argv.replace(".venv/bin/", f"{VENV_BIN}/")
    return subprocess.run(argv.split(), cwd=ROOT, capture_output=True, text=True, timeout=60, env=_env())


def _state(tmp_path: Path, config: Path) -> str:
    result = _run(".venv/bin/kiosk intent --config config/demo.toml status", tmp_path, config)
    return json.loads(result.stdout)["snapshot"]["state"] if result.returncode == 0 else "?"


def test_the_readme_walkthrough_works_on_a_fresh_demo(demo):
    tmp_path, config, proc = demo
    outputs = []
    for command in walkthrough():
        if re.search(r" (scan|tap) ", command):
            # As a person would: the next patron steps up once the last one's receipt is on the screen.
            wait_for(lambda: _state(tmp_path, config) in ("idle", "receipt"), 60, "the bookcase free for a patron")
        deadline = time.monotonic() + 20
        while True:
            result = _run(command, tmp_path, config)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)                     # e.g. the door is still popping open after its unlock
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        outputs.append(result)
        assert proc.poll() is None
    ledger, sync = outputs[-2], outputs[-1]
    wait_for(lambda: "return MH20200125" in _run(".venv/bin/kiosk ledger --config config/demo.toml", tmp_path,
                                                 config).stdout, 30, "the return in the ledger")
    assert "loan   MH20200125" in ledger.stdout
    # The status commands tell the truth about the running demo: its broker, not "no [mqtt] section".
    assert "fleet link to 127.0.0.1:" in sync.stdout and "no [mqtt] section" not in sync.stdout
    assert ".demo.run.toml, the config the running demo made of demo.toml" in sync.stderr
    # The contactless tap went through pcscd (door 4 opened for it, or the put would have failed).
    assert "pcscd lists the virtual card reader" in (tmp_path / "demo.log").read_text()


def test_a_killed_demo_takes_its_children_with_it(demo):
    tmp_path, config, proc = demo
    found = PidFile(tmp_path / "var" / "demo" / "demo.pids").running()
    assert found.demo == proc.pid and len(found.children) >= 3          # daemon, peer bookcase, broker (pcscd)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: not PidFile(tmp_path / "var" / "demo" / "demo.pids").running().anything, 30,
             "every child of the demo to stop")


def test_a_stale_demo_is_found_and_cleaned_at_start(tmp_path):
    (tmp_path / "config").mkdir()
    config = tmp_path / "config" / "demo.toml"
    shutil.copy(ROOT / "config" / "demo.toml", config)
    leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        pids = PidFile(tmp_path / "var" / "demo" / "demo.pids")
        pids.write([leftover.pid])                  # as if this process were a demo that left it behind
        data = json.loads(pids.path.read_text())
        data["demo"] = {"pid": 999_999_999, "cmdline": "gone"}
        pids.path.write_text(json.dumps(data))
        refused = subprocess.run([sys.executable, "-m", "simulators.demo", "--config", str(config), "--headless",
                                  "--exit"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL, env=_env())
        assert refused.returncode == 2
        assert "a demo that was killed left 1 process(es) behind" in refused.stdout
        assert "--clean" in refused.stderr and leftover.poll() is None
        pids.stop(pids.running())
        assert leftover.wait(timeout=10) == -signal.SIGTERM
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()
