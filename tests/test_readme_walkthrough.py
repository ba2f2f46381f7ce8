"""The README's by-hand walkthrough, run command by command against a headless `make demo` (read from the README
itself, so it cannot drift); the status commands read the running demo's config; pcscd is there for the
contactless card (and stays until the demo stops it); a demo ended by SIGTERM or SIGKILL during its story takes its
children with it and the next one runs clean; a stale demo is found at the next start and --clean stops it; the pid
file knows a child from the moment it starts; the demo's supervisor stops its children last first."""

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

from simulators.children import PidFile, Supervisor
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


def _config(tmp_path: Path) -> Path:
    (tmp_path / "config").mkdir(exist_ok=True)
    config = tmp_path / "config" / "demo.toml"
    shutil.copy(ROOT / "config" / "demo.toml", config)
    return config


def _demo(config: Path, *args: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "simulators.demo", "--config", str(config), "--headless",
                                 *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=_env())


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def demo(tmp_path):
    require_binary("ffmpeg")
    require_binary("mosquitto")
    config = _config(tmp_path)
    proc = _demo(config, "--pause", "0", log=tmp_path / "demo.log")
    try:
        wait_for(lambda: "The bookcase keeps running" in (tmp_path / "demo.log").read_text() or proc.poll() is not None,
                 240, "the demo's story to end")
        assert proc.poll() is None, (tmp_path / "demo.log").read_text()[-3000:]
        yield tmp_path, config, proc
    finally:
        _end(proc)


def _run(command: str, tmp_path: Path, config: Path) -> subprocess.CompletedProcess:
    argv = command.replace("config/demo.toml", str(config)).replace("var/demo/sim", str(tmp_path / "var/demo/sim"))
    argv = argv.replace(".venv/bin/", f"{VENV_BIN}/")
    return subprocess.run(argv.split(), cwd=ROOT, capture_output=True, text=True, timeout=60, env=_env())


def _state(tmp_path: Path, config: Path) -> str:
    result = _run(".venv/bin/kiosk intent --config config/demo.toml status", tmp_path, config)
    return json.loads(result.stdout)["snapshot"]["state"] if result.returncode == 0 else "?"


def test_the_readme_walkthrough_works_on_a_fresh_demo(demo):
    tmp_path, config, proc = demo
    outputs: dict[str, subprocess.CompletedProcess] = {}
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
        outputs[" ".join(command.split()[1:3])] = result
        assert proc.poll() is None
    ledger, sync, content = outputs["ledger --config"], outputs["sync status"], outputs["content status"]
    wait_for(lambda: "return MH20200125" in _run(".venv/bin/kiosk ledger --config config/demo.toml", tmp_path,
                                                 config).stdout, 30, "the return in the ledger")
    assert "loan   MH20200125" in ledger.stdout
    # The status commands tell the truth about the running demo: its broker, not "no [mqtt] section".
    assert "fleet link to 127.0.0.1:" in sync.stdout and "no [mqtt] section" not in sync.stdout
    assert ".demo.run.toml, the config the running demo made of demo.toml" in sync.stderr
    # ... and the screen content it plays, from the demo's server (demo.toml alone has neither key nor server).
    installed = re.search(r"content version (\d+) installed", content.stdout)
    assert installed and "updates from http://127.0.0.1:" in content.stdout, content.stdout
    assert ".demo.run.toml" in content.stderr
    # The contactless tap went through pcscd (door 4 opened for it, or the put would have failed).
    assert "pcscd lists the virtual card reader" in (tmp_path / "demo.log").read_text()
    # A pcscd the demo started stays until the demo stops it: with --auto-exit it quit a minute after its start
    # when the daemon had not connected by then (the content is drawn in between: slow on a small machine).
    for _, command in PidFile(tmp_path / "var" / "demo" / "demo.pids").running().children:
        assert "--auto-exit" not in command, command


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_killed_demo_takes_its_children_with_it(tmp_path, sig):
    require_binary("ffmpeg")
    require_binary("mosquitto")
    config, log = _config(tmp_path), tmp_path / "demo.log"
    pids = PidFile(tmp_path / "var" / "demo" / "demo.pids")
    proc = _demo(config, "--pause", "0.5", log=log)
    try:
        wait_for(lambda: "A patron picks door" in log.read_text() or proc.poll() is not None, 240,
                 "the story to begin")
        assert proc.poll() is None, log.read_text()[-3000:]
        found = pids.running()
        assert found.demo == proc.pid and len(found.children) >= 3      # daemon, peer bookcase, broker (pcscd)
        was = PidFile(tmp_path / "was.pids")
        shutil.copy(pids.path, was.path)           # a clean stop removes the demo's own record
        proc.send_signal(sig)
        proc.wait(timeout=90)
        wait_for(lambda: not was.running().anything, 30, "every child of the demo to stop")
    finally:
        _end(proc)
    sync = _run(".venv/bin/kiosk sync status --config config/demo.toml", tmp_path, config)
    assert ".demo.run.toml" not in sync.stderr and "fleet link to" not in sync.stdout   # no demo runs now
    if sig == signal.SIGTERM:
        assert proc.returncode == 0 and not pids.path.exists()
        assert not (tmp_path / "config" / ".demo.run.toml").exists()
        return
    # The next demo in the same place runs clean: nobody else on its ptys, no leftovers to stop.
    again = _demo(config, "--pause", "0", "--offline", "--no-story", "--exit", log=tmp_path / "again.log")
    try:
        again.wait(timeout=240)
    finally:
        _end(again)
    out = (tmp_path / "again.log").read_text()
    assert again.returncode == 0, out[-3000:]
    head = out.split("Starting the simulated bookcase")[0]
    assert "multiple access" not in out and "behind" not in head and "another demo" not in head, head


def test_a_stale_demo_is_found_and_cleaned_at_start(tmp_path):
    config = _config(tmp_path)
    leftover = _sleeper()
    try:
        pids = PidFile(tmp_path / "var" / "demo" / "demo.pids")
        pids.write([leftover.pid])                  # as if this process were a demo that left it behind
        data = json.loads(pids.path.read_text())
        data["demo"] = {"pid": 999_999_999, "start": 1, "cmdline": "gone"}
        pids.path.write_text(json.dumps(data))
        refused = subprocess.run([sys.executable, "-m", "simulators.demo", "--config", str(config), "--headless",
                                  "--exit"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL, env=_env())
        assert refused.returncode == 2
        assert "a demo that was killed left 1 process(es) behind" in refused.stdout
        assert "--clean" in refused.stderr and leftover.poll() is None
        cleaned = subprocess.run([sys.executable, "-m", "simulators.demo", "--config", str(config), "--headless",
                                  "--offline", "--no-story", "--exit", "--pause", "0", "--clean"], cwd=ROOT,
                                 capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL, env=_env())
        assert leftover.wait(timeout=10) == -signal.SIGTERM
        assert "demo: stopped" in cleaned.stdout and cleaned.returncode == 0, cleaned.stdout[-3000:] + cleaned.stderr
        assert not pids.path.exists()               # the clean demo's own record, gone when it stopped
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()

def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def test_a_child_recorded_the_moment_it_starts_is_found_again(tmp_path):
    # Popen returns once the child has begun its exec, while the kernel still shows it an empty command line
    # (most of the time, on this machine): a daemon recorded right after its start must still be found.
    procs = []
    try:
        for n in range(10):
            pids = PidFile(tmp_path / f"demo{n}.pids")
            procs.append(_sleeper())
            pids.write([procs[-1].pid])
            assert [pid for pid, _ in pids.running().children] == [procs[-1].pid], f"start {n}"
            wait_for(lambda: "time.sleep(120)" in pids.running().children[0][1], 10, "its command line, to show")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_a_recorded_pid_now_held_by_another_process_is_not_taken_for_the_child(tmp_path):
    pids = PidFile(tmp_path / "demo.pids")
    proc = _sleeper()
    try:
        pids.write([proc.pid])
        data = json.loads(pids.path.read_text())
        data["children"][0]["start"] += 1             # as if the child had ended and its pid been given again
        pids.path.write_text(json.dumps(data))
        assert not pids.running().anything
    finally:
        proc.kill()
        proc.wait()


def test_the_supervisor_records_each_child_as_it_starts_and_stops_them_last_first(tmp_path):
    pids = PidFile(tmp_path / "demo.pids")
    children = Supervisor(pids)
    stopped: list[str] = []

    def broken() -> None:
        stopped.append("broken")
        raise RuntimeError("a child that fails to stop does not keep the others running")

    children.add("world", lambda: stopped.append("world"))
    first = children.popen("first", [sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        assert [pid for pid, _ in pids.running().children] == [first.pid]       # recorded as soon as started
        children.add("broken", broken)
        second = children.popen("second", [sys.executable, "-c", "import time; time.sleep(120)"])
        assert sorted(pid for pid, _ in pids.running().children) == sorted([first.pid, second.pid])
        assert children.names() == ["world", "first", "broken", "second"]
        children.stop()
        assert second.poll() is not None and first.poll() is not None
        assert stopped == ["broken", "world"]
        assert not pids.path.exists() and children.names() == []
    finally:
        for proc in (first, locals().get("second")):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def _leftover_pid_file(tmp_path: Path, pid: int) -> PidFile:
    pids = PidFile(tmp_path / "var" / "demo" / "demo.pids")
    pids.write([pid])                              # as if this process were a demo that left it behind
    data = json.loads(pids.path.read_text())
    data["demo"] = {"pid": 999_999_999, "start": 1, "cmdline": "gone"}
    pids.path.write_text(json.dumps(data))
    return pids


@pytest.mark.parametrize("answer", [b"n\n", b"\x04"], ids=["no", "end-of-input"])
def test_on_a_terminal_the_demo_asks_before_stopping_leftovers(tmp_path, answer):
    import pty
    config = _config(tmp_path)
    leftover = _sleeper()
    master, slave = pty.openpty()
    try:
        _leftover_pid_file(tmp_path, leftover.pid)
        proc = subprocess.Popen([sys.executable, "-m", "simulators.demo", "--config", str(config), "--headless",
                                 "--exit"], cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, env=_env())
        os.close(slave)
        seen = b""
        while b"[y/N]" not in seen:
            chunk = os.read(master, 4096)
            assert chunk, seen
            seen += chunk
        os.write(master, answer)
        assert proc.wait(timeout=60) == 2
        try:
            while chunk := os.read(master, 4096):
                seen += chunk
        except OSError:                              # EIO: the demo has closed its end
            pass
        text = seen.decode(errors="replace")
        assert "a demo that was killed left 1 process(es) behind" in text and "--clean" in text, text
        assert "Traceback" not in text and leftover.poll() is None
    finally:
        os.close(master)
        leftover.kill()
        leftover.wait()
