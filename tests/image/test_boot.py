"""The SD image boots: built by systemd/image/build.sh, set up as docs/operators.md says, booted under
``qemu-system-aarch64 -M virt`` with the image's own kernel and initrd (taken from its boot partition with mtools).

The card gets the example config (config/citybook.example.toml) with the simulated bookcase's ports and real
certificates made for the run, copied with the guide's own mcopy commands. The kernel command line is the
image's cmdline.txt with the serial console of ``virt`` and two test-only units: citybook-sim (kiosk-sim world
inside the VM) and citybook-bootcheck (prints /usr/lib/citybook/report on the console, then powers off).
Three boots of one card: the first sets the bookcase up, the second keeps its database, the third has a broken
config and must say so on the screen and keep the kiosk stopped.

Needs root and the image tools (scripts/bootstrap.sh --image); without them it skips, except under CI=true.
The Debian tree is cached in /var/cache/citybook-image, so only the first build on a machine is slow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "image-test"
BOOT = "@@4M"                                  # the boot partition's offset in the image, as the guide says
BUILD_TIMEOUT_S = 3 * 3600
BOOT_TIMEOUT_S = 1200
BOOKCASE_ID = "MH-0901"
TOOLS = ("mmdebstrap", "qemu-system-aarch64", "mcopy", "mtype", "mdir", "mkfs.ext4", "sfdisk", "bmaptool",
         "openssl")
SECRETS = ("ecard.key", "ca.crt", "bookcase.crt", "bookcase.key")   # the guide's table

pytestmark = pytest.mark.timeout(BUILD_TIMEOUT_S + 4 * BOOT_TIMEOUT_S)


def _require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    problem = ("the image build needs root" if os.geteuid() != 0 else
               f"missing {', '.join(missing)} (scripts/bootstrap.sh --image)" if missing else None)
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the SD image boot test cannot run: {problem}")
        pytest.skip(f"the SD image boot test: {problem}")


@pytest.fixture(scope="module")
def image() -> Path:
    _require_tools()
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "build.log"
    started = time.monotonic()
    with log.open("w") as out:
        result = subprocess.run([str(ROOT / "systemd" / "image" / "build.sh"), "--no-xz", "--out", str(OUT)],
                                stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S)
    print(f"image build: {time.monotonic() - started:.0f} s (log {log})")
    assert result.returncode == 0, log.read_text()[-4000:]
    images = sorted(OUT.glob("citybook-*-arm64.img"))
    assert len(images) == 1, images
    assert images[0].with_suffix(".bmap").exists()
    assert images[0].with_suffix(".manifest").exists()
    return images[0]


def _config_text() -> str:
    """The guide's step 2: the annotated example, with this bookcase's id and the simulator's ports."""
    text = (ROOT / "config" / "citybook.example.toml").read_text()
    for old, new in (('secret = "CHANGE-ME-the-librarys-patron-key-secret"', 'secret = "boot-test-secret-0123456789"'),
                     ('id = "MH-0001"', f'id = "{BOOKCASE_ID}"'),
                     ('port = "/dev/ttyUSB0"', 'port = "/run/citybook-sim/devices/lockboard"'),
                     ('port = "/dev/ttyUSB1"', 'port = "/run/citybook-sim/devices/rfid"'),
                     ('port = "/dev/ttyACM0"', 'port = "/run/citybook-sim/devices/scanner"'),
                     ("enabled = true", "enabled = false")):      # no card reader in the VM
        assert old in text, old
        text = text.replace(old, new)
    return text


def _make_secrets(folder: Path) -> None:
    folder.mkdir()
    (folder / "ecard.key").write_text("boot-test-ecard-key-0123456789\n")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "30", "-subj", "/CN=boot test CA", "-keyout", str(folder / "ca.key"),
                    "-out", str(folder / "ca.crt")], check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", f"/CN={BOOKCASE_ID}", "-keyout", str(folder / "bookcase.key"),
                    "-out", str(folder / "bookcase.csr")], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(folder / "bookcase.csr"), "-CA", str(folder / "ca.crt"),
                    "-CAkey", str(folder / "ca.key"), "-CAcreateserial", "-days", "30",
                    "-out", str(folder / "bookcase.crt")], check=True, capture_output=True)
    for extra in ("ca.key", "bookcase.csr", "ca.srl"):
        (folder / extra).unlink(missing_ok=True)


def _mcopy(card: Path, *args: str) -> None:
    subprocess.run(["mcopy", "-o", "-i", f"{card}{BOOT}", *args], check=True, capture_output=True, timeout=60)


class Card:
    """A copy of the image set up as the guide says, and its boots under qemu."""

    def __init__(self, image: Path, work: Path) -> None:
        self.path = work / "card.img"
        self.work = work
        subprocess.run(["cp", "--sparse=always", "--reflink=auto", str(image), str(self.path)], check=True)
        with self.path.open("r+b") as f:            # a bigger card: the data partition grows on first boot
            f.truncate(self.path.stat().st_size + 1024 * 1024 * 1024)
        files = subprocess.run(["mdir", "-b", "-i", f"{self.path}{BOOT}", "::"], capture_output=True, text=True,
                               check=True).stdout.split()
        names = [Path(f).name for f in files]
        kernel = next(n for n in names if n.startswith("vmlinuz-"))
        initrd = next(n for n in names if n.startswith("initrd.img-"))
        for name in (kernel, initrd):
            subprocess.run(["mcopy", "-o", "-i", f"{self.path}{BOOT}", f"::{name}", str(work / name)], check=True)
        self.kernel, self.initrd = work / kernel, work / initrd
        self.cmdline = self.read("cmdline.txt").strip()
        self.boots = 0

    def read(self, name: str) -> str:
        return subprocess.run(["mtype", "-i", f"{self.path}{BOOT}", f"::{name}"], capture_output=True, text=True,
                              check=True).stdout

    def listing(self, folder: str) -> list[str]:
        out = subprocess.run(["mdir", "-b", "-i", f"{self.path}{BOOT}", f"::{folder}"], capture_output=True,
                             text=True).stdout
        return sorted(Path(line).name for line in out.split())

    def boot(self) -> tuple[dict | None, str]:
        """One boot to the report (or to the timeout); the report and the whole console."""
        self.boots += 1
        args = [a for a in self.cmdline.split() if not a.startswith(("console=", "quiet", "loglevel="))]
        # The emulated machine is slow (TCG, a shared CPU): devices may take longer than systemd's 90 s default.
        append = " ".join(["console=ttyAMA0", *args, "systemd.default_device_timeout_sec=600",
                           "systemd.wants=citybook-sim.service",
                           "systemd.wants=citybook-bootcheck.service"])
        console = self.work / f"console-{self.boots}.log"
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a72", "-smp", "2", "-m", "1536",
               "-kernel", str(self.kernel), "-initrd", str(self.initrd), "-append", append,
               "-drive", f"file={self.path},format=raw,if=virtio", "-nic", "none",
               "-device", "virtio-rng-pci", "-device", "i6300esb", "-display", "none", "-monitor", "none",
               "-serial", f"file:{console}", "-no-reboot"]
        started = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(timeout=BOOT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            err = b"(timed out)"
        text = console.read_text(errors="replace") if console.exists() else ""
        print(f"boot {self.boots}: {time.monotonic() - started:.0f} s to power-off (console {console})")
        match = re.search(r"@@CITYBOOK-REPORT@@ (.*?) @@END@@", text, re.S)
        if match is None:
            print(text[-6000:], err.decode(errors="replace")[-2000:])
            return None, text
        return json.loads(match.group(1).replace("\r", "").replace("\n", "")), text


@pytest.fixture(scope="module")
def boots(image, tmp_path_factory):
    """Three boots of one card: set up (1), again (2), with a broken config (3)."""
    work = tmp_path_factory.mktemp("card")
    card = Card(image, work)
    # The guide's step 3: citybook.toml at the top, the secret files into secrets/.
    (work / "citybook.toml").write_text(_config_text())
    _make_secrets(work / "secrets")
    _mcopy(card.path, str(work / "citybook.toml"), "::citybook.toml")
    _mcopy(card.path, *(str(work / "secrets" / name) for name in SECRETS), "::secrets/")
    assert card.listing("secrets") == sorted([*SECRETS, "README.txt"])
    results = {}
    for n in (1, 2):
        results[n] = card.boot()
        results[n] += (card.listing("secrets"),)
    broken = _config_text().replace('[bookcase]\n', '[bookcase]\ndoor_count = 6\n') \
                           .replace("number = 2\n", "number = 1\n")
    (work / "citybook.toml").write_text(broken)
    _mcopy(card.path, str(work / "citybook.toml"), "::citybook.toml")
    results[3] = card.boot() + (card.listing("secrets"),)
    yield results
    card.path.unlink(missing_ok=True)


def _report(boots, n) -> dict:
    report, console, _ = boots[n]
    assert report is not None, f"boot {n} printed no report; the console's end:\n{console[-4000:]}"
    return report


def test_first_boot_sets_the_bookcase_up(boots):
    report = _report(boots, 1)
    log = "\n".join(report["setup_log"])
    assert report["first_boot"], log
    assert "first boot complete: bookcase MH-0901 is set up" in log
    assert report["setup"] == {"ActiveState": "active", "Result": "success"}
    assert report["hostname"] == BOOKCASE_ID
    # Secrets: off the FAT partition, on the data partition, 0600 and the kiosk user's.
    assert sorted(s["name"] for s in report["secrets"]) == sorted(SECRETS)
    assert {s["mode"] for s in report["secrets"]} == {"0o600"}
    assert {s["uid"] for s in report["secrets"]} == {900}
    assert [s["name"] for s in report["boot_secrets"]] == ["README.txt"]
    assert boots[1][2] == ["README.txt"]             # and the card, read from outside after power-off
    # The data partition grew to the end of the (1 GiB bigger) card.
    assert "grow-data: /dev/vda3 is now" in log
    assert int(report["mounts"]["/data"]["size"]) > 1024 * 1024 * 1024
    assert report["ssh"]["ActiveState"] == "inactive"          # no key on the card: SSH stays off


def test_kiosk_runs_ready_as_the_citybook_user(boots):
    report = _report(boots, 1)
    kiosk = report["kiosk"]
    # Type=notify: "active" only once the daemon said READY=1; the status is its own.
    assert kiosk["Type"] == "notify"
    assert (kiosk["ActiveState"], kiosk["SubState"]) == ("active", "running"), report["setup_log"]
    assert kiosk["StatusText"] == "serving 4 doors"
    assert kiosk["NRestarts"] == "0"
    print(f"boot to kiosk ready: {int(kiosk['ActiveEnterTimestampMonotonic']) / 1e6:.1f} s")
    assert report["database"] and report["database"]["tables"] > 0


def test_read_only_root_writable_data_watchdog_and_volatile_journal(boots):
    report = _report(boots, 1)
    mounts = report["mounts"]
    assert "ro" in mounts["/"]["options"]
    assert "rw" in mounts["/data"]["options"] and mounts["/data"]["fstype"] == "ext4"
    assert "rw" in mounts["/var/lib/citybook"]["options"]
    assert mounts["/var/log"]["fstype"] == "tmpfs"
    assert report["journal_volatile"] and not report["journal_persistent"]
    assert report["manager"]["RuntimeWatchdogUSec"] == "15s"
    assert report["watchdog_devices"], "the i6300esb watchdog was not found"
    assert report["failed_units"] == [], report["failed_units"]


def test_second_boot_keeps_the_database(boots):
    first, second = _report(boots, 1), _report(boots, 2)
    assert second["first_boot"] == first["first_boot"]      # the first boot's work is not done again
    assert second["database"]["inode"] == first["database"]["inode"]
    assert second["database"].get("first_event") == first["database"].get("first_event")
    assert second["database"].get("outbox", 0) >= first["database"].get("outbox", 0)
    assert "already fills the card" in "\n".join(second["setup_log"])
    assert (second["kiosk"]["ActiveState"], second["kiosk"]["SubState"]) == ("active", "running")
    assert sorted(s["name"] for s in second["secrets"]) == sorted(SECRETS)
    assert second["logs"] and any(f["name"] == "journal.log" for f in second["logs"])


def test_a_broken_config_is_shown_and_the_kiosk_stays_stopped(boots):
    report, console, _ = boots[3]
    report = _report(boots, 3)
    assert report["setup"]["ActiveState"] == "failed"
    assert report["kiosk"]["ActiveState"] != "active"
    # On the console (the screen on a Pi) and in the journal: every mistake, in words.
    for text in (console, "\n".join(report["setup_log"])):
        assert "THIS BOOKCASE IS NOT RUNNING" in text
        assert "bookcase.door_count: unknown key" in text
        assert "door 1 is listed twice" in text
    assert report["database"]["inode"] == _report(boots, 1)["database"]["inode"]
