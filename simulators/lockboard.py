"""Simulated Kerong CU-style lock-control boards on one RS-485 line (19200 8N1)."""

from __future__ import annotations

from kiosk.drivers.lockboard import codec
from kiosk.drivers.lockboard.codec import ReadStateRequest, StateResponse, UnlockRequest
from simulators.device import FrameDevice
from simulators.pty import PtyLink
from simulators.world import World

ALL_BITS = 0xFFFF


class LockBoardSim(FrameDevice):
    """Every board wired to a door of the world answers at its address; other addresses stay silent.

    Both commands are answered with the board's state; the raw bits follow the configured polarity
    (``lock_bit_unlocked``: the bit value meaning "unlocked", ``sensor_bit_open``: "door open").
    """

    decode = staticmethod(codec.decode)
    HANDLERS = {UnlockRequest: "_handle_unlock", ReadStateRequest: "_handle_read_state"}

    def __init__(self, world: World, link: PtyLink, *, lock_bit_unlocked: int = 1, sensor_bit_open: int = 1) -> None:
        super().__init__(link)
        self.world = world
        self.lock_bit_unlocked = lock_bit_unlocked
        self.sensor_bit_open = sensor_bit_open
        self.dead: set[int] = set()       # boards that have died (power, a burnt driver): they never answer

    def handle_frame(self, frame: object) -> None:
        name = self.HANDLERS.get(type(frame))
        if name is None:
            return  # e.g. another board's state reply echoed on the bus
        if frame.board not in self.world.boards or frame.board in self.dead:  # type: ignore[attr-defined]
            return  # no (working) board at that address: nobody answers
        getattr(self, name)(frame)

    def _handle_unlock(self, request: UnlockRequest) -> None:
        self.world.unlock(request.board, request.lock)
        self._send_state(request.board)

    def _handle_read_state(self, request: ReadStateRequest) -> None:
        self._send_state(request.board)

    def _send_state(self, board: int) -> None:
        unlocked, opened = self.world.board_state(board)
        locks = unlocked if self.lock_bit_unlocked else ~unlocked & ALL_BITS
        sensors = opened if self.sensor_bit_open else ~opened & ALL_BITS
        self.send(StateResponse(board=board, locks=locks, sensors=sensors))
