"""The library's side of a fleet run, each part a process of its own: Mosquitto, the gateway, the simulated ILS.

- The broker: simulators.fleet.broker.Broker (persistence on, so a restart keeps every session and queued
  message, as a production broker does); anonymous on loopback — the fleet's ACL and passwords are exercised by
  tests/sync, and would cost a mosquitto_passwd run per bookcase here.
- The ILS: simulators/scale/ils_host.py over the run's population, stock and desk loans.
- The gateway: ``python -m gateway run --config …`` with an SQLite journal, its patron map imported first with
  ``python -m gateway patrons import`` (which also writes the bookcases' snapshot); SIGKILLed and restarted as
  systemd's Restart= would.

``ProcessStats`` reads a process's CPU time and resident memory from /proc, for the benchmark.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from simulators.children import tied_to_process
from simulators.control import call
from simulators.fleet.broker import Broker
from simulators.fleet.bookcases import SECRET

REPO = Path(__file__).resolve().parents[2]
SIP2_PASSWORD = "fleet-sip2-password"
LIBRARY = "minhang"
START_TIMEOUT_S = 60.0


@dataclass
class GatewaySettings:
    pool_size: int = 4
    hold_s: float = 60.0           # [order] hold_s: real seconds (the gateway runs on real time)
    lease_s: float = 30.0
    acks_delay_ms: int = 100
    refresh_delay_s: float = 2.0
    max_refresh_per_s: float = 5.0
    state_interval_s: float = 5.0


class ProcessStats:
    """CPU seconds and resident memory of a process (and the peak seen) from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_mb = 0.0
        self.cpu_at_start = self.cpu_s()

    def cpu_s(self) -> float:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                    self.peak_rss_mb = max(self.peak_rss_mb, rss)
                    return rss
        except OSError:
            pass
        return 0.0


class IlsProcess:
    def __init__(self, folder: Path, setup: dict, latency_ms: float = 0.0) -> None:
        self.folder = folder
        self.link_dir = folder / "ils"
        self.setup_path = folder / "ils-setup.json"
        self.setup = setup
        self.latency_ms = latency_ms
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.stats: ProcessStats | None = None

    def start(self) -> IlsProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.setup_path.write_text(json.dumps(self.setup, ensure_ascii=False), encoding="utf-8")
        log = open(self.folder / "ils.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators.scale.ils_host", "--link-dir", str(self.link_dir), "--setup",
             str(self.setup_path), "--password", SIP2_PASSWORD, "--latency-ms", str(self.latency_ms)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=log, **tied_to_process())
        log.close()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the simulated ILS did not start; see {self.folder / 'ils.log'}")
        self.port = json.loads(line)["port"]
        self.stats = ProcessStats(self.proc.pid)
        return self

    def control(self, cmd: str, **args) -> object:
        return call(self.link_dir, cmd, timeout=120, **args)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()


class GatewayProcess:
    """``python -m gateway run`` on a config written here; ``kill()`` is SIGKILL, ``start()`` again restarts."""

    def __init__(self, folder: Path, mqtt_port: int, ils_port: int, settings: GatewaySettings) -> None:
        self.folder = folder
        self.settings = settings
        self.config = self._write_config(mqtt_port, ils_port)
        self.proc: subprocess.Popen | None = None
        self.kills = 0
        self.stats: ProcessStats | None = None
        self.cpu_before = 0.0           # CPU seconds of earlier (killed) runs

    @property
    def journal_path(self) -> Path:
        return self.folder / "journal.sqlite3"

    @property
    def snapshot_path(self) -> Path:
        return self.folder / "patrons-snapshot.jsonl"

    def _write_config(self, mqtt_port: int, ils_port: int) -> Path:
        s = self.settings
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "sip2-password").write_text(SIP2_PASSWORD + "\n")
        (self.folder / "patron-secret").write_text(SECRET + "\n")
        text = f"""# A fleet run's gateway (simulators/scale/centre.py).
library = "{LIBRARY}"
[gateway]
id = "gw-fleet"
state_interval_s = {s.state_interval_s}
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
reconnect_min_s = 0.2
reconnect_max_s = 2.0
keepalive_s = 10
[ils]
host = "127.0.0.1"
port = {ils_port}
user = "citybook"
password_file = "sip2-password"
location = "MH-BOOKCASES"
institution = "CN-310112"
pool_size = {s.pool_size}
backoff_min_s = 0.2
backoff_max_s = 2.0
timeout_s = 5
[journal]
path = "journal.sqlite3"
[patrons]
secret_file = "patron-secret"
snapshot = "patrons-snapshot.jsonl"
refresh_delay_s = {s.refresh_delay_s}
max_refresh_per_s = {s.max_refresh_per_s}
[order]
hold_s = {s.hold_s}
lease_s = {s.lease_s}
[acks]
delay_ms = {s.acks_delay_ms}
"""
        path = self.folder / "gateway.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def import_patrons(self, rows: list[tuple[str, str, int]]) -> None:
        """The library's export (card, class, loans elsewhere) into the gateway's map; writes the snapshot."""
        export = self.folder / "patrons-export.csv"
        with open(export, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["card", "class", "status", "loans_elsewhere"])
            for card, patron_class, loans in rows:
                writer.writerow([card, patron_class, "active", loans])
        done = subprocess.run([sys.executable, "-m", "gateway", "patrons", "import", "--config", str(self.config),
                               str(export)], cwd=REPO, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"citybook-gateway patrons import failed: {done.stderr.strip() or done.stdout}")

    def start(self) -> GatewayProcess:
        log = open(self.folder / "gateway.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(self.config)],
                                     cwd=REPO, stdout=log, stderr=subprocess.STDOUT, **tied_to_process())
        log.close()
        self.stats = ProcessStats(self.proc.pid)
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_s(self) -> float:
        return self.cpu_before + (self.stats.cpu_s() if self.stats and self.running else 0.0)

    def kill(self) -> None:
        if self.running:
            self.cpu_before += self.stats.cpu_s()
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)
            self.kills += 1

    def stop(self) -> None:
        if self.running:
            self.cpu_before += self.stats.cpu_s()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


class Centre:
    """Broker, ILS and gateway of one run."""

    def __init__(self, folder: Path, ils_setup: dict, gateway: GatewaySettings, ils_latency_ms: float = 0.0) -> None:
        self.folder = folder
        self.broker = Broker(folder / "broker")
        self.ils = IlsProcess(folder / "ils", ils_setup, ils_latency_ms)
        self.gateway_settings = gateway
        self.gateway: GatewayProcess | None = None
        self.broker_stats: ProcessStats | None = None
        self.broker_cpu_before = 0.0
        self.broker_restarts = 0

    def start(self, patrons: list[tuple[str, str, int]]) -> None:
        self.broker.start()
        self.broker_stats = ProcessStats(self.broker.proc.pid)
        self.ils.start()
        self.gateway = GatewayProcess(self.folder / "gateway", self.broker.port, self.ils.port, self.gateway_settings)
        self.gateway.import_patrons(patrons)
        self.gateway.start()
        self.wait_gateway_online()

    def wait_gateway_online(self, timeout_s: float = START_TIMEOUT_S, *, live: bool = False) -> None:
        """Until the gateway's state says online: its shared subscription exists from then on, so the broker keeps the
        bookcases' events for it (before its first connection there is nobody to keep them for). ``live``: a state
        it publishes now, not the retained one a restarted broker kept from before."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        online = threading.Event()
        topic = f"citybook/v1/{LIBRARY}/central/gateway/gw-fleet/state"

        def on_message(client, userdata, msg) -> None:
            try:
                if json.loads(msg.payload).get("online") and not (live and msg.retain):
                    online.set()
            except ValueError:
                pass
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-watch-gateway", protocol=mqtt.MQTTv5)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        client.on_message = on_message
        client.connect("127.0.0.1", self.broker.port)
        client.loop_start()
        try:
            if not online.wait(timeout_s):
                raise RuntimeError(f"the gateway did not come online within {timeout_s:.0f} s; see "
                                   f"{self.gateway.folder / 'gateway.log'}")
        finally:
            client.disconnect()
            client.loop_stop()

    def stop_broker(self) -> None:
        self.broker_cpu_before += self.broker_stats.cpu_s() if self.broker_stats else 0.0
        self.broker_stats = None
        self.broker.stop()

    def start_broker(self) -> None:
        self.broker.start()
        self.broker_stats = ProcessStats(self.broker.proc.pid)
        self.broker_restarts += 1

    def broker_cpu_s(self) -> float:
        return self.broker_cpu_before + (self.broker_stats.cpu_s() if self.broker_stats else 0.0)

    def stop(self) -> None:
        for part in (self.gateway, self.ils):
            if part is not None:
                try:
                    part.stop()
                except Exception:       # the run's report matters more than a clean stop
                    pass
        self.broker.stop()
