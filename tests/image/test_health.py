"""kiosk/health.py on fake sysfs trees (the layer's edge): a Raspberry Pi OS kernel, Debian's kernel, a PC; and
the health object in the retained state message (schema, and a change of an alarm reading sends a new state)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.config import load_config
from kiosk.health import HealthReader
from kiosk.store.ledger import Store
from kiosk.sync import schema
from kiosk.sync.service import HEALTH_INTERVAL_S, FleetSync
from simulators.fleet.bookcases import write_fleet_config


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "sys"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _proc(tmp_path: Path, uptime: str = "3725.41 7000.02\n") -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "uptime").write_text(uptime)
    return proc


DEBIAN_PI4 = {   # Debian's kernel on a Pi 4: raspberrypi-hwmon, the SoC's thermal zone, ext4 counters
    "class/hwmon/hwmon0/name": "cpu_thermal\n",
    "class/hwmon/hwmon1/name": "rpi_volt\n",
    "class/hwmon/hwmon1/in0_lcrit_alarm": "1\n",
    "class/thermal/thermal_zone0/temp": "61835\n",
    "fs/ext4/mmcblk0p2/errors_count": "0\n",
    "fs/ext4/mmcblk0p3/errors_count": "2\n",
}


def test_debian_kernel_on_a_pi_4(tmp_path):
    reader = HealthReader(tmp_path, _tree(tmp_path, DEBIAN_PI4), _proc(tmp_path), tmp_path / "no-counter")
    health = reader.read()
    assert health.uptime_s == 3725
    assert health.temperature_c == 61.8
    assert health.disk_free_mb is not None and health.disk_free_mb > 0
    assert health.undervoltage_since_boot is True       # the hwmon alarm is the firmware's sticky bit
    assert health.undervoltage is None and health.throttled is None and health.throttled_since_boot is None
    assert health.sd_errors == 2
    assert set(health.to_message()) == {"uptime_s", "temperature_c", "disk_free_mb", "undervoltage_since_boot",
                                        "sd_errors"}


@pytest.mark.parametrize("bits, now_uv, now_thr, boot_uv, boot_thr", [
    ("0x0", False, False, False, False),
    ("0x50005", True, True, True, True),        # the kernel log's "Under-voltage detected! (0x00050005)"
    ("0x10000", False, False, True, False),
    ("0x40000", False, False, False, True),
])
def test_raspberry_pi_os_get_throttled(tmp_path, bits, now_uv, now_thr, boot_uv, boot_thr):
    sys_root = _tree(tmp_path, {"devices/platform/soc/soc:firmware/get_throttled": bits + "\n",
                                **DEBIAN_PI4})
    counter = tmp_path / "kernel_sd_errors"
    counter.write_text("3\n")
    health = HealthReader(tmp_path, sys_root, _proc(tmp_path), counter).read()
    assert (health.undervoltage, health.throttled) == (now_uv, now_thr)
    assert (health.undervoltage_since_boot, health.throttled_since_boot) == (boot_uv, boot_thr)
    assert health.sd_errors == 5                        # ext4's 2 and the kernel log's 3


def test_a_machine_without_any_of_it(tmp_path, caplog):
    reader = HealthReader(tmp_path / "gone", _tree(tmp_path, {}), tmp_path / "no-proc", tmp_path / "no-counter")
    health = reader.read()
    assert health.to_message() == {}
    assert "cannot read the uptime" in caplog.text and "cannot read the free space" in caplog.text
    caplog.clear()
    reader.read()
    assert caplog.text == ""                            # each failure is logged once


def test_garbage_in_sysfs_is_left_out_not_raised(tmp_path):
    sys_root = _tree(tmp_path, {"devices/platform/soc/soc:firmware/get_throttled": "banana\n",
                                "class/thermal/thermal_zone0/temp": "hot\n",
                                "fs/ext4/mmcblk0p3/errors_count": "x\n"})
    health = HealthReader(tmp_path, sys_root, _proc(tmp_path, "nonsense"), tmp_path / "none").read()
    assert (health.undervoltage, health.temperature_c, health.sd_errors, health.uptime_s) == (None, None, None, None)


def test_health_fits_the_state_schema_and_the_schema_refuses_a_wrong_type():
    msg = {"v": 1, "id": "6f1c1b0e-8f7c-4a53-9d52-2c6b9e0e4f11", "bookcase": "MH-0001",
           "ts": "2026-12-01T08:00:00+08:00", "type": "state", "online": True, "version": "0.1.0",
           "outbox_depth": 0, "last_sync": None,
           "health": {"uptime_s": 10, "temperature_c": 55.2, "disk_free_mb": 20000, "undervoltage_since_boot": False,
                      "sd_errors": 0}}
    schema.check_message("state", msg)
    for bad in ({"undervoltage": "yes"}, {"sd_errors": -1}, {"uptime": 3}):
        with pytest.raises(schema.MessageError):
            schema.check_message("state", {**msg, "health": bad})


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_state_message_carries_health_and_an_alarm_change_sends_it_at_once(tmp_path):
    cfg = load_config(write_fleet_config(tmp_path, "MH-H", "健康书柜", {"host": "127.0.0.1", "port": 1}))
    sys_root = _tree(tmp_path, DEBIAN_PI4)
    clock = _Clock()
    fs = FleetSync(cfg, Store(cfg.db_path, "MH-H"), lambda event: None, clock=clock,
                   health=HealthReader(cfg.data_dir, sys_root, _proc(tmp_path), tmp_path / "no-counter"))
    sent: list[dict] = []
    def publish(gen, topic, body, retain):              # the network's edge: keep the state messages
        msg = json.loads(body)
        if msg["type"] == "state":
            sent.append(msg)
        return 1
    fs.link.publish = publish
    fs.online, fs.gen = True, 1
    fs.pump()
    assert len(sent) == 1
    assert sent[0]["health"]["undervoltage_since_boot"] is True and sent[0]["health"]["temperature_c"] == 61.8
    clock.now += HEALTH_INTERVAL_S + 1
    (sys_root / "class/thermal/thermal_zone0/temp").write_text("63000\n")
    fs.pump()
    assert len(sent) == 1                               # the temperature alone waits for the heartbeat
    clock.now += HEALTH_INTERVAL_S + 1
    (sys_root / "fs/ext4/mmcblk0p3/errors_count").write_text("7\n")
    fs.pump()
    assert len(sent) == 2 and sent[1]["health"]["sd_errors"] == 7
    assert sent[1]["health"]["temperature_c"] == 63.0
