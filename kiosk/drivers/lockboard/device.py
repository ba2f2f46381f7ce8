"""Lock-control board driver: unlock doors, read lock and door-sensor state, and watch it by polling."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import serial

from kiosk.drivers.errors import DeviceError, DeviceTimeout, DeviceUnavailable
from kiosk.drivers.lockboard.codec import (
    LOCKS_PER_BOARD,
    MAX_BOARD,
    ReadStateRequest,
    StateResponse,
    UnlockRequest,
    decode,
)
from kiosk.drivers.session import RequestSession
from kiosk.drivers.transport import SerialTransport

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockState:
    """One lock as the board reports it, polarity already applied."""

    locked: bool
    door_open: bool


ChangeCallback = Callable[[int, int, LockState], None]
LinkCallback = Callable[[bool, str], None]
FaultCallback = Callable[[int, "str | None"], None]


class LockBoard:
    """Kerong CU-style lock boards on one RS-485 bus.

    ``start()`` opens the port and polls every board each ``poll_interval_s`` (``open_poll_interval_s``
    while any lock is released or any door open, so a closing door is seen at once): ``on_change(board, lock,
    state)`` fires for all 16 locks on a board's first good read and for every lock whose state changes
    afterwards; ``on_board_fault(board, message)`` fires when a board stops answering and
    ``on_board_fault(board, None)`` when it answers again. Callbacks run on the poll thread (or the
    transport's thread for ``on_link``) and must not block.

    While a board cannot be heard (it stops answering, the line is unplugged, an unlock goes unanswered) its
    doors may open and close unseen. So the first reading that *begins* after such a failure, or after
    ``report_again(board)``, reports all 16 locks, changed or not; a reading begun before it is dropped, and
    no reading is reported after ``on_link(False)`` or ``on_board_fault(board, message)`` that was taken
    before it.

    Polarity differs between board batches: ``lock_bit_unlocked`` is the L bit value meaning unlocked,
    ``sensor_bit_open`` the S bit value meaning the door is open.
    """

    def __init__(
        self,
        url: str,
        *,
        boards: Iterable[int],
        baudrate: int = 19200,
        lock_bit_unlocked: int = 1,
        sensor_bit_open: int = 1,
        poll_interval_s: float = 0.1,
        open_poll_interval_s: float = 0.02,
        timeout_s: float = 0.25,
        retries: int = 2,
        on_change: ChangeCallback | None = None,
        on_link: LinkCallback | None = None,
        on_board_fault: FaultCallback | None = None,
        reconnect_interval_s: float = 1.0,
        trace: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.boards = tuple(sorted(set(boards)))
        if not self.boards:
            raise ValueError("a lock board bus needs at least one board number")
        for board in self.boards:
            if not 0 <= board <= MAX_BOARD:
                raise ValueError(f"board number must be 0..{MAX_BOARD}, got {board}")
        if lock_bit_unlocked not in (0, 1) or sensor_bit_open not in (0, 1):
            raise ValueError("lock_bit_unlocked and sensor_bit_open must be 0 or 1")
        self.url = url
        self.name = f"lock board on {url}"
        self.lock_bit_unlocked = lock_bit_unlocked
        self.sensor_bit_open = sensor_bit_open
        self.poll_interval_s = poll_interval_s
        self.open_poll_interval_s = min(open_poll_interval_s, poll_interval_s)
        self.timeout_s = timeout_s
        self.retries = retries
        self._on_change = on_change
        self._on_link = on_link
        self._on_board_fault = on_board_fault
        self._states: dict[int, dict[int, LockState]] = {}
        self._faulted: set[int] = set()
        # Readings are numbered as they begin; a board in _stale_upto reports every lock from its first reading
        # numbered above the mark, and drops readings at or below it (begun before its state was lost).
        self._report_lock = threading.Lock()
        self._readings = 0
        self._stale_upto: dict[int, int] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()       # report_again: poll now rather than at the next interval
        self._poll_thread: threading.Thread | None = None
        self._session = RequestSession.over_serial(
            url, baudrate=baudrate, parity=serial.PARITY_NONE, name=self.name, decode=decode,
            on_link=self._link_changed, reconnect_interval_s=reconnect_interval_s, trace=trace)

    @property
    def transport(self) -> SerialTransport:
        return self._session.transport

    def start(self) -> None:
        """Open the port (retrying in the background if it is missing) and start polling."""
        self._stop.clear()
        self._session.start()
        self._poll_thread = threading.Thread(target=self._poll_loop, name=f"poll {self.name}", daemon=True)
        self._poll_thread.start()

    def close(self) -> None:
        """Stop polling and close the port; joins every thread. Safe to call twice."""
        self._stop.set()
        self._wake.set()
        self._session.close()
        thread, self._poll_thread = self._poll_thread, None
        if thread is not None:
            thread.join()

    def unlock(self, board: int, lock: int) -> dict[int, LockState]:
        """Pulse lock ``lock`` (1..16) of ``board`` open; returns the board's state from its reply."""
        self._check_board(board)
        if not 1 <= lock <= LOCKS_PER_BOARD:
            raise ValueError(f"lock number must be 1..{LOCKS_PER_BOARD}, got {lock}")
        LOGGER.info("%s: unlocking board %d lock %d", self.name, board, lock)
        try:
            reply = self._session.request(
                UnlockRequest(board, lock).to_bytes(),
                self._reply_of(board),
                self.timeout_s,
                self.retries,
                what=f"from board {board} to unlocking lock {lock}",
            )
        except DeviceError:
            self.report_again(board)       # the unlock may have reached the board: the door may be open
            raise
        return self._lock_states(reply)

    def report_again(self, board: int) -> None:
        """Report every lock of ``board`` again, changed or not, from the next reading begun after this call
        (whoever listens has lost track of its doors). Non-blocking; safe from any thread."""
        self._check_board(board)
        with self._report_lock:
            self._stale_upto[board] = self._readings
        self._wake.set()

    def read_state(self, board: int) -> dict[int, LockState]:
        """Lock number (1..16) -> state of every lock of ``board``."""
        self._check_board(board)
        reply = self._session.request(
            ReadStateRequest(board).to_bytes(),
            self._reply_of(board),
            self.timeout_s,
            self.retries,
            what=f"from board {board}",
        )
        return self._lock_states(reply)

    # ------------------------------------------------------------------ internals

    def _check_board(self, board: int) -> None:
        if board not in self.boards:
            raise ValueError(f"{self.name}: board {board} is not configured (boards: {list(self.boards)})")

    @staticmethod
    def _reply_of(board: int) -> Callable[[object], bool]:
        return lambda frame: isinstance(frame, StateResponse) and frame.board == board

    def _lock_states(self, reply: StateResponse) -> dict[int, LockState]:
        return {
            lock: LockState(
                locked=reply.lock_bit(lock) != self.lock_bit_unlocked,
                door_open=reply.sensor_bit(lock) == self.sensor_bit_open,
            )
            for lock in range(1, LOCKS_PER_BOARD + 1)
        }

    def _link_changed(self, up: bool, message: str) -> None:
        self._session.link_changed(up, message)
        with self._report_lock:            # no reading taken before the link went down is reported after it
            if not up:
                for board in self.boards:
                    self._stale_upto[board] = self._readings
                # The link's return clears every board's fault upstream: a board still dead then says so again.
                self._faulted.clear()
            if self._on_link is not None:
                self._on_link(up, message)

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            for board in self.boards:
                if self._stop.is_set():
                    return
                self._poll_board(board)
            self._wake.wait(self._next_poll_s())
            self._wake.clear()

    def _next_poll_s(self) -> float:
        # A door can only close while it is open: poll fast then, so the inventory starts at once.
        busy = any(not st.locked or st.door_open for states in list(self._states.values())
                   for st in states.values())
        return self.open_poll_interval_s if busy else self.poll_interval_s

    def _poll_board(self, board: int) -> None:
        with self._report_lock:
            self._readings += 1
            reading = self._readings
        try:
            states = self.read_state(board)
        except DeviceUnavailable:
            with self._report_lock:
                self._stale_upto[board] = self._readings
            return  # the link is down; on_link has said so
        except DeviceTimeout as exc:
            with self._report_lock:
                self._stale_upto[board] = self._readings
                if board not in self._faulted:
                    self._faulted.add(board)
                    LOGGER.warning("%s", exc)
                    self._call(self._on_board_fault, board, str(exc))
            return
        except DeviceError as exc:
            LOGGER.warning("%s: reading board %d failed: %s", self.name, board, exc)
            return
        with self._report_lock:
            stale = self._stale_upto.get(board)
            if stale is not None and reading <= stale:
                return  # begun before the board's state was lost: it may predate what happened since
            if board in self._faulted:
                self._faulted.discard(board)
                LOGGER.info("%s: board %d answers again", self.name, board)
                self._call(self._on_board_fault, board, None)
            previous = None if stale is not None else self._states.get(board)
            self._stale_upto.pop(board, None)
            self._states[board] = states
            for lock, state in states.items():
                if previous is None or previous[lock] != state:
                    self._call(self._on_change, board, lock, state)

    def _call(self, callback: Callable | None, *args: object) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            LOGGER.exception("%s: callback %r failed", self.name, callback)
