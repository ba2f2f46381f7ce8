"""A whole simulated bookcase: the world, the lock board, the RFID bus and the scanner on their ptys."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simulators.control import ControlServer, control_path
from simulators.errors import SimError
from simulators.lockboard import LockBoardSim
from simulators.pty import BITS_8E1, BITS_8N1, PtyLink
from simulators.rfid import AIR_MS_PER_TAG, RfidBusSim
from simulators.scanner import ScannerSim
from simulators.vpcd import HOLD_S, VPCD_HOST, VPCD_PORT, VpcdCard
from simulators.world import DOOR_POP_DELAY_MS, World

if TYPE_CHECKING:
    from kiosk.config import Config

DEVICES = ("lockboard", "rfid", "scanner")
LINK_FAULTS = ("garble", "silence", "slow", "unplug", "replug", "heal")


class SimulatedBookcase:
    """Everything ``kiosk-sim world`` runs, in-process: ``start()``, drive it, ``stop()`` (or ``with``).

    The links are ``link_dir/lockboard``, ``link_dir/rfid``, ``link_dir/scanner`` (symlinks to ptys) and,
    with ``control=True``, ``link_dir/control.sock``. The methods mirror the ``kiosk-sim ctl`` commands.
    """

    def __init__(self, cfg: Config, link_dir: str | os.PathLike, *, seed: int = 0, air_ms: float = AIR_MS_PER_TAG,
                 miss: float = 0.0, books_per_door: int = 60, empty: bool = False,
                 pop_delay_ms: float = DOOR_POP_DELAY_MS, control: bool = False,
                 world: World | None = None, clock: Callable[[], float] = time.monotonic,
                 vpcd_port: int = VPCD_PORT,
                 on_event: Callable[[str], None] | None = None,
                 on_command: Callable[[str, dict[str, Any], dict[str, Any]], None] | None = None) -> None:
        self.cfg = cfg
        self.link_dir = Path(link_dir)
        self.world = world or World.from_config(cfg, seed=seed, books_per_door=books_per_door, empty=empty,
                                                pop_delay_ms=pop_delay_ms, clock=clock, on_event=on_event)
        self.links = {
            "lockboard": PtyLink(self.link_dir / "lockboard", cfg.lockboard.baudrate, BITS_8N1,
                                 name="lockboard", checksum_len=1, seed=seed),
            "rfid": PtyLink(self.link_dir / "rfid", cfg.rfid.baudrate, BITS_8E1,
                            name="rfid", checksum_len=2, seed=seed + 1),
            "scanner": PtyLink(self.link_dir / "scanner", cfg.scanner.baudrate, BITS_8N1,
                               name="scanner", checksum_len=0, seed=seed + 2),
        }
        self.lockboard = LockBoardSim(self.world, self.links["lockboard"],
                                      lock_bit_unlocked=cfg.lockboard.lock_bit_unlocked,
                                      sensor_bit_open=cfg.lockboard.sensor_bit_open)
        self.rfid = RfidBusSim(self.world, self.links["rfid"], air_ms=air_ms, miss=miss, seed=seed)
        self.scanner = ScannerSim(self.links["scanner"])
        self.card = VpcdCard(VPCD_HOST, vpcd_port, on_event=self.world.on_event)  # library cards, via pcscd's vpcd
        self.control = (ControlServer(control_path(self.link_dir), self.commands(), on_command=on_command)
                        if control else None)
        self._started = False

    # ----------------------------------------------------------------- lifecycle

    @property
    def paths(self) -> dict[str, Path]:
        """Where the host finds each device (and the control socket)."""
        paths = {name: link.link_path for name, link in self.links.items()}
        paths["control"] = control_path(self.link_dir)
        return paths

    def start(self) -> SimulatedBookcase:
        if self._started:
            return self
        self.link_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.control is not None:
                self.control.start()
            for link in self.links.values():
                link.start()
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        """Stop every thread, close every pty, remove the symlinks and the socket. Idempotent."""
        if self.control is not None:
            self.control.stop()
        self.card.close()
        for link in self.links.values():
            link.stop()
        self._started = False

    def __enter__(self) -> SimulatedBookcase:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- the ctl commands

    def commands(self) -> dict[str, Callable[..., Any]]:
        """The control-socket command table: name -> callable with keyword arguments."""
        return {
            "ping": lambda: "pong",
            "status": self.status,
            "scan": self.scan,
            "tap": self.tap,
            "take": self.take,
            "put": self.put,
            "put_junk": self.put_junk,
            "close": self.close,
            "force": self.force,
            "flaky": self.flaky,
            "board": self.board,
            **{fault: getattr(self, fault) for fault in LINK_FAULTS},
        }

    def scan(self, card: str) -> dict[str, Any]:
        """The patron holds a card or e-card QR code to the scanner."""
        return {"card": card, "sent": self.scanner.scan(str(card))}

    def tap(self, uid: str, hold_s: float = HOLD_S, error_sw: str | None = None,
            slow_ms: float = 0) -> dict[str, Any]:
        """The patron taps a library card on the PC/SC reader (the vpcd virtual card; needs pcscd running).

        Blocks while the card is held: ``hold_s`` from the moment the reader notices it. ``error_sw``: the card
        answers GET UID with that status word (e.g. "6A81"); ``slow_ms``: it answers every APDU that late.
        """
        stats = self.card.tap(uid, float(hold_s), error_sw=error_sw, delay_s=float(slow_ms) / 1000)
        return {"uid": stats.uid, "hold_s": float(hold_s), "polls": stats.atr_requests, "uid_reads": stats.uid_reads,
                "detect_ms": round(((stats.detected_at or 0) - (stats.connected_at or 0)) * 1000, 1)}

    def take(self, door: int, item: str) -> dict[str, Any]:
        return self.world.take(_int(door, "door"), item)

    def put(self, door: int, item: str) -> dict[str, Any]:
        return self.world.put(_int(door, "door"), item)

    def put_junk(self, door: int) -> str:
        return self.world.put_junk(_int(door, "door"))

    def close(self, door: int) -> dict[str, Any]:
        return self.world.close(_int(door, "door"))

    def force(self, door: int) -> dict[str, Any]:
        return self.world.force(_int(door, "door"))

    def flaky(self, item: str, on: bool = True) -> dict[str, Any]:
        return self.world.set_flaky(item, bool(on))

    def board(self, board: int, alive: bool = False) -> dict[str, Any]:
        """One lock board on the bus dies (stops answering) or comes back; the others keep answering."""
        board = _int(board, "board")
        if board not in self.world.boards:
            raise SimError(f"no lock board {board} (boards: {', '.join(map(str, sorted(self.world.boards)))})")
        (self.lockboard.dead.discard if alive else self.lockboard.dead.add)(board)
        return {"board": board, "alive": bool(alive), "dead": sorted(self.lockboard.dead)}

    def fault(self, device: str, fault: str) -> dict[str, Any]:
        """Apply a link fault (garble, silence, slow, unplug, replug, heal) to one device."""
        if fault not in LINK_FAULTS:
            raise SimError(f"unknown fault {fault!r} (faults: {', '.join(LINK_FAULTS)})")
        getattr(self._link(device), fault)()
        return self._device_status(device)

    def garble(self, device: str) -> dict[str, Any]:
        return self.fault(device, "garble")

    def silence(self, device: str) -> dict[str, Any]:
        return self.fault(device, "silence")

    def slow(self, device: str) -> dict[str, Any]:
        return self.fault(device, "slow")

    def unplug(self, device: str) -> dict[str, Any]:
        return self.fault(device, "unplug")

    def replug(self, device: str) -> dict[str, Any]:
        return self.fault(device, "replug")

    def heal(self, device: str) -> dict[str, Any]:
        return self.fault(device, "heal")

    def status(self) -> dict[str, Any]:
        """The world, each device's link and faults, and the counters under "stats". JSON-able::

            {"library", "bookcase", "name", "books": int,
             "doors": [{"door", "board", "lock", "reader", "capacity", "open", "locked", "popping", "forced",
                        "count", "rounds", "items": [item ids]}],
             "outside": [item ids], "flaky": [item ids],
             "devices": {"lockboard"|"rfid"|"scanner": {"device", "link", "pty", "plugged", "faults",
                                                       "baudrate", "bits_per_byte"}},
             "stats": {"lockboard"|"rfid"|"scanner": {"bytes_in", "bytes_out", "frames_in", "frames_out",
                       "byte_time_s", "air_time_s", "fault_delay_s", "garbage_bytes", "corrupted_frames",
                       "ignored_bytes", "dropped_bytes"}}}
        """
        return {
            **self.world.status(),
            "devices": {name: self._device_status(name) for name in DEVICES},
            "stats": {name: link.stats.to_dict() for name, link in self.links.items()},
        }

    # ----------------------------------------------------------------- internals

    def _link(self, device: str) -> PtyLink:
        try:
            return self.links[device]
        except KeyError:
            raise SimError(f"no device {device!r} (devices: {', '.join(DEVICES)})") from None

    def _device_status(self, device: str) -> dict[str, Any]:
        link = self._link(device)
        return {"device": device, "link": str(link.link_path), "pty": link.device, "plugged": link.plugged,
                "faults": link.faults, "baudrate": link.baudrate, "bits_per_byte": link.bits_per_byte}


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise SimError(f"{name} must be a number, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SimError(f"{name} must be a number, got {value!r}") from None
