"""A simulated serial line: a pseudo-terminal behind a stable symlink, paced writes and injectable faults."""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

LOGGER = logging.getLogger(__name__)

BITS_8N1 = 10  # start + 8 data + stop
BITS_8E1 = 11  # start + 8 data + parity + stop
SLOW_GAP_MS = 20.0
READ_CHUNK = 4096
# Line noise: bytes that cannot start a frame of our protocols (no STX 0x02, no plausible FEIG LEN),
# so a decoder skips them at once and resynchronises on the real frame behind them.
NOISE_BYTES = bytes([0x00, 0xFF, 0xFE, 0x01, 0x80, 0xF0, 0xF8, 0xC0])


@dataclass
class LinkStats:
    """Counters of one device's line; seconds are time the simulator actually slept."""

    bytes_in: int = 0
    bytes_out: int = 0
    frames_in: int = 0
    frames_out: int = 0
    byte_time_s: float = 0.0    # pacing: bits_per_byte / baudrate per byte written
    air_time_s: float = 0.0     # RF air time (the RFID readers)
    fault_delay_s: float = 0.0  # extra gaps of the "slow" fault
    garbage_bytes: int = 0      # noise injected by the "garble" fault
    corrupted_frames: int = 0   # frames whose checksum "garble" broke
    ignored_bytes: int = 0      # bytes read while "silence" was on
    dropped_bytes: int = 0      # bytes not written: unplugged, silent, or nobody reading

    def to_dict(self) -> dict[str, float | int]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


class PtyLink:
    """One device's serial line.

    The simulator owns the pty master; the slave is set raw and kept open by the simulator, and a
    symlink at ``link_path`` points at it (replaced atomically), so the host opens a stable path.
    A reader thread hands every chunk of bytes the host sends to ``on_bytes``; ``write`` sends a whole
    response after sleeping its byte time. Faults: ``garble``, ``silence``, ``slow``, ``unplug``,
    ``replug``, ``heal``.
    """

    def __init__(self, link_path: str | os.PathLike, baudrate: int, bits_per_byte: int = BITS_8N1, *,
                 name: str = "", on_bytes: Callable[[bytes], None] | None = None, checksum_len: int = 1,
                 seed: int = 0, slow_gap_ms: float = SLOW_GAP_MS, corrupt_probability: float = 0.25,
                 noise: bytes = NOISE_BYTES) -> None:
        self.link_path = Path(link_path)
        self.baudrate = baudrate
        self.bits_per_byte = bits_per_byte
        self.name = name or self.link_path.name
        self.on_bytes = on_bytes
        self.checksum_len = checksum_len
        self.slow_gap_s = slow_gap_ms / 1000
        self.corrupt_probability = corrupt_probability
        self.noise = noise
        self.stats = LinkStats()
        self._rng = random.Random(seed)
        self._faults: frozenset[str] = frozenset()  # replaced whole: safe to read from any thread
        self._write_lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._device: str | None = None
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        self._wake_w: int | None = None

    # ----------------------------------------------------------------- lifecycle

    @property
    def byte_time_s(self) -> float:
        return self.bits_per_byte / self.baudrate

    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def device(self) -> str | None:
        """The pty slave's device name (e.g. /dev/pts/5), None while unplugged."""
        return self._device

    @property
    def faults(self) -> list[str]:
        return sorted(self._faults)

    def start(self) -> None:
        """Create the pty, the symlink and the reader thread."""
        self.replug()

    def stop(self) -> None:
        """Unplug for good: thread joined, pty closed, symlink removed. Idempotent."""
        self.unplug()

    # ----------------------------------------------------------------- faults

    def garble(self, corrupt_probability: float | None = None) -> None:
        """Noise before every response; some responses broken (checksum flipped or noise inside)."""
        if corrupt_probability is not None:
            self.corrupt_probability = corrupt_probability
        self._faults |= {"garble"}

    def silence(self) -> None:
        """Keep reading requests but ignore them, and never answer."""
        self._faults |= {"silence"}

    def slow(self) -> None:
        """Write one byte at a time with a gap after each."""
        self._faults |= {"slow"}

    def heal(self) -> None:
        """Clear garble, silence and slow."""
        self._faults = frozenset()

    def unplug(self) -> None:
        """Close the master and remove the symlink: to the host the device vanishes."""
        thread, stop, wake_w = self._thread, self._stop, self._wake_w
        if thread is not None and stop is not None and wake_w is not None:
            stop.set()
            try:
                os.write(wake_w, b"x")
            except OSError:
                pass            # the reader has already gone (its end of the wake pipe is closed): join it
            thread.join()
        with self._write_lock:
            was_plugged = self._master is not None
            if was_plugged:
                self._remove_link(self._device)
            for fd in (self._master, self._slave, self._wake_w):
                if fd is not None:
                    os.close(fd)
            self._master = self._slave = self._device = self._wake_w = None
            self._thread = self._stop = None
        if was_plugged:
            LOGGER.info("%s: unplugged", self.name)

    def _remove_link(self, device: str | None) -> None:
        # Only our own link: another simulator may have taken the path over since.
        try:
            if os.readlink(self.link_path) == device:
                self.link_path.unlink()
        except (FileNotFoundError, OSError):
            pass

    def replug(self) -> None:
        """A fresh pty behind the same symlink (unplugging first if needed)."""
        self.unplug()
        master, slave = os.openpty()
        tty.setraw(slave)
        flags = fcntl.fcntl(master, fcntl.F_GETFL)
        fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        device = os.ttyname(slave)
        self.link_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link_path.with_name(f".{self.link_path.name}.{os.getpid()}.tmp")
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(device)
        os.replace(tmp, self.link_path)
        wake_r, wake_w = os.pipe()
        stop = threading.Event()
        with self._write_lock:
            self._master, self._slave, self._device = master, slave, device
            self._wake_w, self._stop = wake_w, stop
        self._thread = threading.Thread(target=self._read_loop, args=(master, wake_r, stop),
                                        name=f"sim-{self.name}", daemon=True)
        self._thread.start()
        LOGGER.info("%s: %s -> %s", self.name, self.link_path, device)

    # ----------------------------------------------------------------- writing

    def write(self, data: bytes) -> bool:
        """Send one whole response: sleep its byte time, then write it. False if it was dropped."""
        with self._write_lock:
            if self._master is None or "silence" in self._faults:
                self.stats.dropped_bytes += len(data)
                return False
            if "garble" in self._faults:
                data = self._garble(data)
            if "slow" in self._faults:
                for i in range(len(data)):
                    self._pace(1)
                    time.sleep(self.slow_gap_s)
                    self.stats.fault_delay_s += self.slow_gap_s
                    self._write_all(data[i:i + 1])
            else:
                self._pace(len(data))
                self._write_all(data)
            return True

    def _pace(self, nbytes: int) -> None:
        delay = nbytes * self.byte_time_s
        time.sleep(delay)
        self.stats.byte_time_s += delay

    def _write_all(self, data: bytes) -> None:
        assert self._master is not None
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                # Nobody is reading and the pty buffer is full: like a real line, the bytes are lost.
                self.stats.dropped_bytes += len(view)
                return
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                self.stats.dropped_bytes += len(view)
                return
            self.stats.bytes_out += n
            view = view[n:]

    def _garble(self, data: bytes) -> bytes:
        noise = bytes(self._rng.choice(self.noise) for _ in range(self._rng.randint(1, 3)))
        self.stats.garbage_bytes += len(noise)
        frame = bytearray(data)
        if len(frame) > 1 and self._rng.random() < self.corrupt_probability:
            self.stats.corrupted_frames += 1
            if self.checksum_len and self._rng.random() < 0.5:
                frame[-1] ^= 0xA5  # the last checksum byte no longer matches
            else:
                frame.insert(self._rng.randrange(1, len(frame)), self._rng.choice(self.noise))
                self.stats.garbage_bytes += 1
        return noise + bytes(frame)

    # ----------------------------------------------------------------- reading

    def _read_loop(self, master: int, wake_r: int, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                ready, _, _ = select.select([master, wake_r], [], [], 1.0)
                if wake_r in ready or stop.is_set():
                    break
                if master not in ready:
                    continue
                try:
                    data = os.read(master, READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.EIO:
                        raise
                    # EIO: no one holds the slave open. Wait for the host to come back.
                    stop.wait(0.05)
                    continue
                if not data:
                    stop.wait(0.05)
                    continue
                self.stats.bytes_in += len(data)
                if "silence" in self._faults:
                    self.stats.ignored_bytes += len(data)
                    continue
                if self.on_bytes is not None:
                    try:
                        self.on_bytes(data)
                    except Exception:
                        LOGGER.exception("%s: the device handler failed on %s", self.name, data.hex(" "))
        finally:
            os.close(wake_r)
