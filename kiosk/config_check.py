"""`kiosk check-config`'s second look: what is valid but looks wrong for a real bookcase.

Errors stop the daemon (kiosk.config lists every one); these are warnings, which an operator should read
before the bookcase goes to its street corner: a serial port that is not there, a baud rate no device of its
kind uses, the demo's secrets or seed data, a data folder that depends on where the config file lies.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from kiosk.config import Config

STANDARD_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
# What each device of the kind docs/design.md §5 names runs at.
DEVICE_BAUD = {"lockboard": (19200, "the Kerong lock board runs at 19200 8N1"),
               "rfid": (38400, "FEIG HF readers run at 38400 8E1"),
               "scanner": (9600, "2D scanners are usually set to 9600 or 115200")}
# Secrets shipped in this repository's demo and test configs: public, so worthless on a real bookcase.
DEMO_SECRETS = ("demo-secret-not-for-production", "fleet-demo-secret-0123456789", "test-secret-0123456789",
                "demo-ecard-key-not-for-production")


def warnings(config: Config) -> list[str]:
    """Warnings for a config that loaded without errors, each naming the key."""
    found: list[str] = []
    for device in ("lockboard", "rfid", "scanner"):
        part = getattr(config, device)
        port = part.port
        if "://" not in port and not os.path.exists(port):
            found.append(f"{device}.port: {port} does not exist (yet): the daemon starts and keeps trying it, "
                         f"with the {device} out of service until it appears; check the cable and the device name")
        usual, why = DEVICE_BAUD[device]
        if part.baudrate not in STANDARD_BAUD_RATES:
            found.append(f"{device}.baudrate: {part.baudrate} is not a standard serial rate "
                         f"({', '.join(map(str, STANDARD_BAUD_RATES))}); {why}")
        elif part.baudrate != usual and not (device == "scanner" and part.baudrate == 115200):
            found.append(f"{device}.baudrate: {part.baudrate}, but {why}")
    secrets = {"secret": config.secret, "ecard.key": config.ecard.key}
    for key, value in secrets.items():
        if value and (value in DEMO_SECRETS or "not-for-production" in value):
            found.append(f"{key}: this is the demo's published secret; a real library keeps its own, the same at "
                         "every bookcase of its fleet and nowhere else")
    if config.seed_demo_data:
        found.append("demo.seed: true loads the demo's patrons, books and staff card (PIN 2468) at start; never on "
                     "a real bookcase")
    raw = _raw(config.path)
    data_dir = raw.get("data_dir") if isinstance(raw, dict) else None
    if isinstance(data_dir, str) and not Path(data_dir).is_absolute():
        found.append(f"data_dir: {data_dir!r} is relative to the config file's folder ({config.data_dir}); a real "
                     "bookcase keeps its database on the data partition, e.g. /var/lib/citybook")
    return found


def _raw(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
