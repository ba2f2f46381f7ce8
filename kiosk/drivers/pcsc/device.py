"""PC/SC library-card reader driver: watches one contactless reader through pcscd and reports card taps.

The UID handed to ``on_card`` is the card's UID from ``FF CA 00 00 00`` as **upper-case hex without
separators**, in the byte order the reader returns it (e.g. ``"04A224B2C53A80"`` for a 7-byte UID,
``"A1B2C3D4"`` for a 4-byte one). The daemon keys patrons on HMAC(secret, that string): the format must
never change, or every enrolled card stops working.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from smartcard import scard

from kiosk.drivers.errors import CodecError, DeviceError, DeviceTimeout, DeviceUnavailable, ProtocolError
from kiosk.drivers.pcsc import codec

LOGGER = logging.getLogger(__name__)

POLL_S = 0.25               # longest wait inside pcscd per call: bounds how long close() takes
DEBOUNCE_S = 1.5            # the same card back within this long after leaving is the same tap
RETRY_S = 1.0               # service or reader missing: look again this often
HELD_GRACE_S = 3.0          # a card that was on the reader when it went away, seen within this long of its
                            # return, never left it (a reader notices a card a poll or two after it is back)
FIRST_ATTEMPT_WAIT_S = 2.0
CLOSE_TIMEOUT_S = 5.0

# pcsc-lite answers these when the service went away under an open context (F_COMM_ERROR: the socket
# to pcscd broke) or when the reader did.
_SERVICE_GONE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED, scard.SCARD_E_INVALID_HANDLE,
                 scard.SCARD_F_COMM_ERROR}
_READER_GONE = {scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE, scard.SCARD_E_NO_READERS_AVAILABLE}
_CARD_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD}


def _text(hresult: int) -> str:
    try:
        return f"{scard.SCardGetErrorMessage(hresult).rstrip('.')} (0x{hresult & 0xFFFFFFFF:08X})"
    except Exception:  # noqa: BLE001 - only a description
        return f"PC/SC error 0x{hresult & 0xFFFFFFFF:08X}"


class _LinkLost(Exception):
    """Internal: the service or the reader is gone; the message says so in an operator's words."""


class CardReader:
    """A PC/SC contactless reader: ``on_card(uid)`` once per tap, ``on_removed(uid)`` when that card leaves.

    Watches the first reader whose name contains ``reader_match`` (empty: the first reader). A card held
    on the reader is one tap however long it stays; a card taken off and put back within ``debounce_s``
    is the same tap. A card whose GET UID does not answer 90 00 is logged and ignored. When pcscd or the
    reader goes away, ``on_link(False, message)`` is called once and the driver keeps looking every
    ``retry_s``; ``on_link(True, message)`` follows when the reader is back. A card that was on the
    reader when it went away and is seen again within ``held_grace_s`` of the reader's return is the
    same tap, not a new one.
    Callbacks run on the driver's own thread (every pyscard call stays there) and must not block.
    """

    def __init__(
        self,
        reader_match: str = "",
        *,
        on_card: Callable[[str], None],
        on_removed: Callable[[str], None] | None = None,
        on_link: Callable[[bool, str], None] | None = None,
        poll_s: float = POLL_S,
        debounce_s: float = DEBOUNCE_S,
        retry_s: float = RETRY_S,
        held_grace_s: float = HELD_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader_match = reader_match
        self.poll_s = poll_s
        self.debounce_s = debounce_s
        self.retry_s = retry_s
        self.held_grace_s = held_grace_s
        self.taps = 0
        self._on_card = on_card
        self._on_removed = on_removed
        self._on_link = on_link
        self._clock = clock
        self._stop = threading.Event()
        self._first_attempt = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._link_up: bool | None = None
        self._context: int | None = None
        self._reader: str | None = None
        self._state = scard.SCARD_STATE_UNAWARE
        self._counter: int | None = None       # pcscd's insert/remove counter at our last look
        self._present = False
        self._card_uid: str | None = None       # UID of the card on the reader, once read
        self._last_uid: str | None = None       # UID of the last tap, for the debounce
        self._left_at: float | None = None      # when that card left the reader
        self._held_uid: str | None = None       # on the reader when the link was lost...
        self._held_until: float | None = None   # ...and the same tap if seen again before this (once it is back)

    @property
    def name(self) -> str:
        if self._reader:
            return f"card reader '{self._reader}'"
        return f"card reader matching {self.reader_match!r}" if self.reader_match else "card reader"

    @property
    def reader(self) -> str | None:
        """The name of the reader being watched, or None while there is none."""
        return self._reader

    def start(self) -> None:
        """Start watching; returns once the first look for pcscd and the reader is done (at most 2 s)."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pcsc card reader", daemon=True)
        self._thread.start()
        self._first_attempt.wait(FIRST_ATTEMPT_WAIT_S)

    def wait_ready(self, timeout_s: float) -> bool:
        """Until the reader is being watched (link up); whether it is."""
        return self._ready.wait(timeout_s)

    def close(self) -> None:
        """Stop watching and join the thread (it ends within ``poll_s``). Safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(CLOSE_TIMEOUT_S)
            if thread.is_alive():
                LOGGER.warning("%s: still inside a PC/SC call after %g s; left to finish on its own",
                               self.name, CLOSE_TIMEOUT_S)

    # ------------------------------------------------------------------ the driver's thread

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except _LinkLost as exc:
                    self._lose(str(exc))
                except Exception as exc:  # noqa: BLE001 - the thread must outlive any surprise
                    LOGGER.exception("%s: unexpected error", self.name)
                    self._lose(f"{self.name}: unexpected error ({exc!r})")
        finally:
            self._release()
            self._first_attempt.set()

    def _step(self) -> None:
        if self._context is None:
            self._establish()
        if self._reader is None:
            self._find_reader()
            self._first_attempt.set()
        self._watch()

    def _establish(self) -> None:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise _LinkLost(f"{self.name}: the PC/SC service (pcscd) does not answer ({_text(hresult)})")
        self._context = context

    def _find_reader(self) -> None:
        hresult, readers = scard.SCardListReaders(self._context, [])
        if hresult in _SERVICE_GONE:
            raise _LinkLost(f"{self.name}: the PC/SC service (pcscd) stopped ({_text(hresult)})")
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE or hresult == scard.SCARD_S_SUCCESS and not readers:
            raise _LinkLost(f"{self.name}: no card reader is connected")
        if hresult != scard.SCARD_S_SUCCESS:
            raise _LinkLost(f"{self.name}: cannot list the card readers ({_text(hresult)})")
        match = next((r for r in readers if self.reader_match in r), None)
        if match is None:
            raise _LinkLost(f"{self.name}: no reader's name contains {self.reader_match!r} "
                            f"(connected: {', '.join(readers)})")
        self._reader = match
        self._state = scard.SCARD_STATE_UNAWARE
        self._counter = None
        self._present = False
        self._card_uid = None
        self._held_until = self._clock() + self.held_grace_s if self._held_uid else None
        self._report_link(True, f"{self.name}: ready")
        self._ready.set()

    def _watch(self) -> None:
        hresult, states = scard.SCardGetStatusChange(self._context, int(self.poll_s * 1000),
                                                     [(self._reader, self._state)])
        if hresult == scard.SCARD_E_TIMEOUT:
            return
        if hresult in _SERVICE_GONE:
            raise _LinkLost(f"{self.name}: the PC/SC service (pcscd) stopped ({_text(hresult)})")
        if hresult in _READER_GONE:
            raise _LinkLost(f"{self.name} was unplugged ({_text(hresult)})")
        if hresult != scard.SCARD_S_SUCCESS:
            raise _LinkLost(f"{self.name}: waiting for cards failed ({_text(hresult)})")
        _, event, _atr = states[0]
        # PC/SC: UNKNOWN = the reader is no longer known, UNAVAILABLE = its state cannot be had.
        if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            raise _LinkLost(f"{self.name} was unplugged")
        self._state = event & ~scard.SCARD_STATE_CHANGED
        self._card_event(event, bytes(_atr))

    def _card_event(self, event: int, atr: bytes) -> None:
        # pcsc-lite counts card insertions and removals in the upper 16 bits of the event state.
        counter = event >> 16
        previous, self._counter = self._counter, counter
        present = bool(event & scard.SCARD_STATE_PRESENT)
        bounced = previous is not None and (counter - previous) & 0xFFFF >= 2   # out and back in between looks
        if self._present and (not present or bounced):
            self._card_left()
        if not present:
            self._present = False
            return
        if self._present and not bounced:
            return      # the same card, still on the reader: still the same tap
        self._present = True
        if event & scard.SCARD_STATE_MUTE:
            LOGGER.warning("%s: a card is on the reader but does not answer (mute); ignored", self.name)
            return
        try:
            uid = self._read_uid(atr)
        except DeviceUnavailable as exc:
            raise _LinkLost(str(exc)) from None
        except DeviceError as exc:
            LOGGER.warning("%s", exc)
            return
        self._card_uid = uid
        self._tap(uid)

    def _card_left(self) -> None:
        uid, self._card_uid = self._card_uid, None
        self._present = False
        if uid is None:
            return
        self._left_at = self._clock()
        LOGGER.debug("%s: card %s left the reader", self.name, uid)
        if self._on_removed is not None:
            self._call(self._on_removed, uid)

    def _tap(self, uid: str) -> None:
        now = self._clock()
        held, self._held_uid = self._held_uid, None
        if uid == held and self._held_until is not None and now < self._held_until:
            LOGGER.info("%s: card %s stayed on the reader while it was away: the same tap", self.name, uid)
            return
        if uid == self._last_uid and self._left_at is not None and now - self._left_at < self.debounce_s:
            LOGGER.info("%s: card %s back within %g s: the same tap", self.name, uid, self.debounce_s)
            return
        self._last_uid = uid
        self._left_at = None
        self.taps += 1
        LOGGER.info("%s: card %s tapped", self.name, uid)
        self._call(self._on_card, uid)

    def _read_uid(self, atr: bytes) -> str:
        """Connect to the card, send GET UID, disconnect. Raises the typed driver errors."""
        kind = _describe_atr(atr)
        hresult, card, protocol = scard.SCardConnect(self._context, self._reader, scard.SCARD_SHARE_SHARED,
                                                     scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hresult != scard.SCARD_S_SUCCESS:
            raise self._error(hresult, f"cannot connect to the {kind}")
        try:
            hresult, response = scard.SCardTransmit(card, protocol, list(codec.get_uid_command()))
            if hresult != scard.SCARD_S_SUCCESS:
                raise self._error(hresult, f"GET UID to the {kind} failed")
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        try:
            return codec.parse_uid(bytes(response))
        except CodecError as exc:
            raise ProtocolError(f"{self.name}: {kind}: {exc}; not a library card, ignored") from exc

    def _error(self, hresult: int, what: str) -> DeviceError:
        message = f"{self.name}: {what} ({_text(hresult)})"
        if hresult in _SERVICE_GONE or hresult in _READER_GONE:
            return DeviceUnavailable(message)
        if hresult in _CARD_GONE:
            return DeviceError(message + "; the card left too soon")
        if hresult in (scard.SCARD_W_UNRESPONSIVE_CARD, scard.SCARD_E_TIMEOUT):
            return DeviceTimeout(message)
        return ProtocolError(message)

    # ------------------------------------------------------------------ link and bookkeeping

    def _lose(self, message: str) -> None:
        self._release()
        self._report_link(False, f"{message}; retrying every {self.retry_s:g} s")
        self._first_attempt.set()
        self._stop.wait(self.retry_s)

    def _release(self) -> None:
        self._ready.clear()
        if self._present:
            # Whether the card stays is unknown until the reader is back and has looked again.
            self._held_uid = self._card_uid
            self._card_left()
        self._reader = None
        context, self._context = self._context, None
        if context is not None:
            try:
                scard.SCardReleaseContext(context)
            except Exception as exc:  # noqa: BLE001 - the service may be gone already
                LOGGER.debug("%s: releasing the PC/SC context: %s", self.name, exc)

    def _report_link(self, up: bool, message: str) -> None:
        if self._link_up is up:
            LOGGER.debug("%s", message)
            return
        self._link_up = up
        (LOGGER.info if up else LOGGER.warning)("%s", message)
        if self._on_link is not None:
            self._call(self._on_link, up, message)

    def _call(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            LOGGER.exception("%s: callback %s failed", self.name, getattr(callback, "__name__", callback))


def _describe_atr(atr: bytes) -> str:
    try:
        return codec.parse_atr(atr).description
    except CodecError:
        return f"card with ATR {atr.hex(' ').upper() or '(none)'}"
