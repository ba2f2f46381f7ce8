"""Remote text in the log lines of the operators' commands: escaped like the daemon's (kiosk.logtext).

`kiosk content serve` logs each request's path, which any HTTP client chooses: a raw escape or newline there
could repaint the operator's terminal or start a forged log line.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys

from simulators.fleet.broker import free_port
from tests.scenarios.harness import wait_for


def test_content_serve_escapes_the_request_paths_it_logs(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "content", "serve", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _connects(port), 30, "kiosk content serve listening")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /%1b]2;owned%07%1b[2J%0a12:00:00%20INFO%20all%20is%20well HTTP/1.0\r\n\r\n")
            while s.recv(4096):
                pass
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode("utf-8", "replace")
    assert "\x1b" not in out and "\x07" not in out
    assert not re.search(r"^12:00:00 INFO", out, re.M)
    assert "\\x1b[2J\\n12:00:00 INFO all is well" in out


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_content_status_escapes_the_last_error_it_prints(tmp_path):
    # The last error may quote a manifest the content server sent (an asset's path, say).
    from kiosk.config import load_config
    from kiosk.sync.content import STATUS_FILE
    from simulators.fleet.bookcases import write_fleet_config
    path = write_fleet_config(tmp_path, "MH-B", "测试书柜", None)
    folder = load_config(path).content_dir
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATUS_FILE).write_text(json.dumps({
        "last_check": "2026-12-04T10:00:00+08:00", "last_result": "refused", "refused": 1,
        "last_error": "asset 'a\x1b[2J\nbookcase MH-B: content version 9 installed' is not allowed"}), encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "kiosk", "content", "status", "--config", str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert "\x1b" not in out and len(out.splitlines()) == 2
    assert "asset 'a\\x1b[2J\\nbookcase MH-B: content version 9 installed' is not allowed" in out
