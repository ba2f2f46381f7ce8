"""`python -m simulators.console_screenshots --out docs/screenshots`: the operators' console's main pages as PNGs.

A console on a temporary journal filled with sample data (simulators.console_sample: ten bookcases, a month of
circulation, alarms, things for staff to review), its fleet fed the bookcases' state messages directly (no
broker needed), photographed by Debian's headless Chromium through Selenium, in Chinese and in English.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from gateway.config import load_gateway_config
from gateway.console import ConsoleServer
from gateway.console.auth import hash_password
from gateway.console.fleet import FleetWatch
from gateway.journal import open_journal
from simulators.console_sample import ROOT, bookcase_id, fill_journal, holdings, state

PAGES = [("console-fleet", "/"), ("console-bookcase", "/bookcase/MH-0001"), ("console-review", "/review"),
         ("console-alarms", "/alarms"), ("console-figures", "/figures")]
USER, PASSWORD = "demo", "demo-password-2026"
CONFIG = """library = "minhang"
[mqtt]
host = "127.0.0.1"
[ils]
host = "127.0.0.1"
port = 6001
user = "citybook"
password_file = "secret"
location = "MH-BOOKCASES"
[journal]
path = "journal.sqlite3"
[patrons]
secret_file = "secret"
[console]
listen = "127.0.0.1:{port}"
secure_cookies = false
"""


def sample_console(folder: Path, port: int, bookcases: int = 10) -> ConsoleServer:
    """A console on ``port`` over sample data; start() it, stop() it."""
    (folder / "secret").write_text("sample-secret-0123456789\n")
    (folder / "gateway.toml").write_text(CONFIG.format(port=port))
    cfg = load_gateway_config(folder / "gateway.toml")
    journal = open_journal(cfg.journal)
    fill_journal(journal, bookcases)
    journal.user_set(USER, hash_password(PASSWORD), "operator")
    fleet = FleetWatch(None, ROOT)
    for n in range(1, bookcases + 1):
        msg = state(bookcase_id(n), n, online=n not in (4, 7), outbox=0 if n not in (4, 7) else 12 * n,
                    reason=None if n not in (4, 7) else "connection lost", doors_out=(5,) if n == 2 else ())
        fleet.take(f"{ROOT}bookcase/{bookcase_id(n)}/state", json.dumps(msg, ensure_ascii=False).encode())
        fleet.take(f"{ROOT}bookcase/{bookcase_id(n)}/holdings",
                   json.dumps(holdings(bookcase_id(n), n, 280 + 7 * n), ensure_ascii=False).encode())
    return ConsoleServer(cfg, journal, fleet=fleet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args(argv)
    from selenium.webdriver.common.by import By

    from tests.gateway.browser import chromium
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = sample_console(Path(tmp), args.port)
        server.start()
        browser = chromium(Path(tmp) / "profile", 1366, 900)
        try:
            base = server.url.rstrip("/")
            browser.get(base + "/login")
            browser.find_element(By.NAME, "user").send_keys(USER)
            browser.find_element(By.NAME, "password").send_keys(PASSWORD)
            browser.find_element(By.CSS_SELECTOR, "form.login button").click()
            time.sleep(0.5)
            for lang in ("zh", "en"):
                browser.get(f"{base}/lang/{lang}")
                for name, path in PAGES:
                    browser.get(base + path)
                    time.sleep(0.3)
                    out = args.out / f"{name}-{lang}.png"
                    browser.save_screenshot(str(out))
                    print(out)
        finally:
            browser.quit()
            server.stop()
            server.views.journal.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
