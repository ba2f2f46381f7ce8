"""The bookcase's health as the kernel shows it: power, throttling, SD card errors, free space, temperature, uptime.

Read from sysfs and procfs, never from a command, so it is cheap enough for every state message and works inside
the kiosk unit's sandbox. Each reading is ``None`` where this kernel does not expose it:

- undervoltage and throttling: Raspberry Pi OS kernels expose the firmware's ``get_throttled`` bits at
  ``/sys/devices/platform/soc/soc:firmware/get_throttled`` (bit 0 under-voltage now, 2 throttled now, 16 and 18
  the same since boot). Debian's kernel has no such file; its ``raspberrypi-hwmon`` driver (hwmon named
  ``rpi_volt``) gives only ``in0_lcrit_alarm``, the firmware's sticky bit: under-voltage since boot.
- SD card errors: the ext4 error counters of the card's file systems (``/sys/fs/ext4/<dev>/errors_count``), plus
  the count of kernel I/O errors on the card that the image's log copier (run as root, which may read the kernel
  log) leaves in ``/run/citybook-health/kernel_sd_errors``.
- temperature: the hottest ``/sys/class/thermal/thermal_zone*/temp``; free space: ``statvfs`` of the data
  folder; uptime: ``/proc/uptime``.

The roots are parameters, so tests read fake sysfs trees (a layer edge).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)

GET_THROTTLED = "devices/platform/soc/soc:firmware/get_throttled"
HWMON_NAME = "rpi_volt"
KERNEL_SD_ERRORS = "/run/citybook-health/kernel_sd_errors"

UNDERVOLTAGE_NOW = 1 << 0
THROTTLED_NOW = 1 << 2
UNDERVOLTAGE_SINCE_BOOT = 1 << 16
THROTTLED_SINCE_BOOT = 1 << 18


@dataclass(frozen=True)
class Health:
    """One reading; ``None`` where the kernel does not tell."""
    uptime_s: int | None
    temperature_c: float | None
    disk_free_mb: int | None
    undervoltage: bool | None
    undervoltage_since_boot: bool | None
    throttled: bool | None
    throttled_since_boot: bool | None
    sd_errors: int | None

    def to_message(self) -> dict:
        """The state message's ``health`` object: the readings this kernel has."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def alarms(self) -> tuple:
        """What should reach the library at once when it changes (temperature and uptime ride along)."""
        return (self.undervoltage, self.undervoltage_since_boot, self.throttled, self.throttled_since_boot,
                self.sd_errors)


class HealthReader:
    """Reads :class:`Health` from ``sys_root`` and ``proc_root`` (``/sys``, ``/proc`` on the bookcase)."""

    def __init__(self, data_dir: Path | str, sys_root: Path | str = "/sys", proc_root: Path | str = "/proc",
                 kernel_sd_errors: Path | str = KERNEL_SD_ERRORS) -> None:
        self.data_dir = Path(data_dir)
        self.sys = Path(sys_root)
        self.proc = Path(proc_root)
        self.kernel_sd_errors = Path(kernel_sd_errors)
        self._failed: set[str] = set()

    def read(self) -> Health:
        """Every reading; a reading that fails is ``None`` (logged once), never an exception."""
        bits, sticky_uv = self._throttled_bits(), self._hwmon_undervoltage()
        return Health(
            uptime_s=self._guard("uptime", self._uptime),
            temperature_c=self._guard("temperature", self._temperature),
            disk_free_mb=self._guard("free space", self._free_mb),
            undervoltage=None if bits is None else bool(bits & UNDERVOLTAGE_NOW),
            undervoltage_since_boot=sticky_uv if bits is None else bool(bits & UNDERVOLTAGE_SINCE_BOOT),
            throttled=None if bits is None else bool(bits & THROTTLED_NOW),
            throttled_since_boot=None if bits is None else bool(bits & THROTTLED_SINCE_BOOT),
            sd_errors=self._guard("SD card errors", self._sd_errors),
        )

    def _guard(self, what: str, read):
        try:
            return read()
        except (OSError, ValueError) as exc:
            if what not in self._failed:
                self._failed.add(what)
                LOGGER.warning("health: cannot read the %s (%s); it is left out of the state message", what, exc)
            return None

    def _uptime(self) -> int:
        return int(float((self.proc / "uptime").read_text().split()[0]))

    def _temperature(self) -> float | None:
        temps = []
        for zone in sorted((self.sys / "class" / "thermal").glob("thermal_zone*")):
            try:
                temps.append(int((zone / "temp").read_text().strip()) / 1000.0)
            except (OSError, ValueError):
                continue
        return round(max(temps), 1) if temps else None

    def _free_mb(self) -> int:
        st = os.statvfs(self.data_dir)
        return st.f_bavail * st.f_frsize // (1024 * 1024)

    def _throttled_bits(self) -> int | None:
        path = self.sys / GET_THROTTLED
        if not path.exists():
            return None
        return self._guard("throttling", lambda: int(path.read_text().strip(), 16))

    def _hwmon_undervoltage(self) -> bool | None:
        for hwmon in sorted((self.sys / "class" / "hwmon").glob("hwmon*")):
            try:
                if (hwmon / "name").read_text().strip() != HWMON_NAME:
                    continue
                return (hwmon / "in0_lcrit_alarm").read_text().strip() not in ("", "0")
            except OSError:
                continue
        return None

    def _sd_errors(self) -> int | None:
        counts = []
        for counter in sorted((self.sys / "fs" / "ext4").glob("*/errors_count")):
            counts.append(int(counter.read_text().strip() or 0))
        try:
            counts.append(int(self.kernel_sd_errors.read_text().strip() or 0))
        except FileNotFoundError:
            pass
        return sum(counts) if counts else None
