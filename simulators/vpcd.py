"""A virtual contactless library card for pcscd's vpcd reader driver (vsmartcard-vpcd), over TCP.

vpcd listens on a TCP port (CHANNELID in /etc/reader.conf.d/vpcd: 0x8C7B = 35963 for the reader
"Virtual PCD 00 00"). A virtual card is a TCP client: connected = a card in the reader's field, closed =
the card taken away. Every message, both ways, is framed the same::

    +-----------------+---------------------+
    | length (2, BE)  | payload (length B)  |
    +-----------------+---------------------+

A 1-byte payload from vpcd is a control message: 0x00 power off, 0x01 power on, 0x02 reset (no answer),
0x04 get ATR (answer: the ATR). Anything longer is a command APDU; the answer is the response APDU.
pcscd polls vpcd for the card every 0.4 s, and vpcd asks for the ATR at every poll: the first message
on a new connection is the moment the reader "sees" the card. A card is presented no sooner than
ABSENT_S after the previous one left, so that vpcd sees the field empty in between.

The card answers the PC/SC part 3 ATR of a MIFARE Classic 1K and ``FF CA 00 00 00`` with its UID and
90 00 (built with the driver's own codec, kiosk.drivers.pcsc.codec). Faults: ``error_sw`` (GET UID
answers that status word instead) and ``delay_s`` (every APDU is answered that much later).

A card lying on a reader is still there when the reader is unplugged and plugged back: when vpcd goes
away under a presented card (pcscd stopped), the card connects again as soon as vpcd listens again,
until it is removed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from kiosk.drivers.errors import CodecError
from kiosk.drivers.pcsc import codec
from kiosk.drivers.pcsc.codec import Apdu, Response
from simulators.errors import SimError

LOGGER = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 0x8C7B            # 35963: reader slot 0 of the Debian vsmartcard-vpcd config
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0x00, 0x01, 0x02, 0x04
MAX_PAYLOAD = 0xFFFF
HOLD_S = 0.5                  # a patron's tap: the card stays in the field about half a second
DETECT_TIMEOUT_S = 5.0        # pcscd polls vpcd every 0.4 s: a card not seen in 5 s is not being watched
CONNECT_TIMEOUT_S = 2.0
RECONNECT_S = 0.1             # a card in the field while vpcd is gone looks for it again this often
# vpcd notices a removed card only at its next poll (every 0.4 s), and a card already waiting then is
# accepted at once: pcscd never sees the field empty and takes the new card for the old one still lying
# there. A patron's next card comes later than that anyway; the simulator makes sure it does.
ABSENT_S = 0.6
_last_removal: dict[tuple[str, int], float] = {}     # (host, port) -> time.monotonic() a card last left
_last_removal_lock = threading.Lock()


def encode_message(payload: bytes) -> bytes:
    """One vpcd message: the payload's length on 2 bytes, big-endian, then the payload."""
    if not payload or len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a vpcd payload is 1..{MAX_PAYLOAD} bytes, got {len(payload)}")
    return len(payload).to_bytes(2, "big") + bytes(payload)


def decode_message(buf: bytes) -> tuple[int, bytes | None]:
    """``(consumed, payload)`` for the first whole message in ``buf``; ``(0, None)`` until it is complete.

    The stream has no markers to resynchronise on: a length of 0 is consumed as an empty message.
    """
    if len(buf) < 2:
        return 0, None
    length = int.from_bytes(buf[:2], "big")
    if len(buf) < 2 + length:
        return 0, None
    return 2 + length, bytes(buf[2 : 2 + length])


def parse_sw(text: str | int) -> int:
    """A status word from ``"6A81"``, ``"6a 81"`` or an int; SimError if it is not two bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        try:
            value = int(str(text).replace(" ", ""), 16)
        except ValueError:
            raise SimError(f"a status word is 4 hex digits like 6A81, got {text!r}") from None
    if not 0 <= value <= 0xFFFF or value >> 8 not in range(0x60, 0x70) and value >> 8 != 0x90:
        raise SimError(f"status word {text!r} is not SW1 SW2 with SW1 in 60..6F or 90")
    return value


def parse_uid(text: str) -> bytes:
    """A card UID from hex (``"04A224B2C53A80"``, separators ``:`` ``-`` and spaces allowed); 4..10 bytes."""
    cleaned = str(text).replace(":", "").replace("-", "").replace(" ", "")
    try:
        uid = bytes.fromhex(cleaned)
    except ValueError:
        raise SimError(f"a card UID is hex like 04A224B2C35E80, got {text!r}") from None
    if len(uid) not in codec.UID_LENGTHS:
        raise SimError(f"a card UID is 4 to 10 bytes (ISO 14443: 4, 7 or 10), got {len(uid)}")
    return uid


@dataclass
class CardStats:
    """What vpcd asked of the card during one presentation; times are time.perf_counter() seconds."""

    uid: str = ""
    messages: int = 0
    atr_requests: int = 0
    power_ons: int = 0
    power_offs: int = 0
    resets: int = 0
    apdus: int = 0
    uid_reads: int = 0           # GET UID commands, whatever they were answered
    reconnects: int = 0          # times vpcd went away under the card and the card found it again
    connected_at: float | None = None
    detected_at: float | None = None      # first message from vpcd: the reader noticed the card
    removed_at: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class VirtualCard:
    """A contactless card's answers, without I/O: ``handle(message)`` -> the reply payload, or None."""

    def __init__(self, uid: bytes, *, card_name: int = codec.CARD_MIFARE_CLASSIC_1K,
                 error_sw: int | None = None) -> None:
        self.uid = bytes(uid)
        self.atr = codec.contactless_atr(card_name)
        self.error_sw = error_sw
        self.powered = False
        self.stats = CardStats(uid=self.uid.hex().upper())

    def handle(self, message: bytes) -> bytes | None:
        self.stats.messages += 1
        # vpcd protocol: a payload of exactly one byte is a control message, anything longer an APDU.
        if len(message) == 1:
            return self._control(message[0])
        if not message:
            LOGGER.warning("virtual card %s: empty message from vpcd ignored", self.stats.uid)
            return None
        self.stats.apdus += 1
        return self.answer(message).to_bytes()

    def _control(self, ctrl: int) -> bytes | None:
        if ctrl == CTRL_ATR:
            self.stats.atr_requests += 1
            return self.atr          # the only control message that is answered
        if ctrl == CTRL_ON:
            self.stats.power_ons += 1
            self.powered = True
        elif ctrl == CTRL_OFF:
            self.stats.power_offs += 1
            self.powered = False
        elif ctrl == CTRL_RESET:
            self.stats.resets += 1
            self.powered = True
        else:
            LOGGER.warning("virtual card %s: unknown vpcd control byte 0x%02x ignored", self.stats.uid, ctrl)
        return None

    def answer(self, raw: bytes) -> Response:
        """The response APDU to command APDU ``raw`` (PC/SC part 3 GET DATA; everything else refused)."""
        try:
            apdu = Apdu.from_bytes(raw)
        except CodecError:
            return Response(b"", codec.SW_WRONG_LENGTH)
        if apdu.cla != codec.CLA_PCSC:
            return Response(b"", codec.SW_CLA_NOT_SUPPORTED)
        if apdu.ins != codec.INS_GET_DATA:
            return Response(b"", codec.SW_INS_NOT_SUPPORTED)
        if apdu.p2 != 0x00 or apdu.p1 not in (codec.P1_UID, codec.P1_HISTORICAL):
            return Response(b"", codec.SW_WRONG_P1_P2)
        if apdu.p1 == codec.P1_HISTORICAL:
            return Response(b"", codec.SW_FUNCTION_NOT_SUPPORTED)   # a storage card has no ATS
        self.stats.uid_reads += 1
        if self.error_sw is not None:
            return Response(b"", self.error_sw)
        if apdu.le is None or apdu.data:
            return Response(b"", codec.SW_WRONG_LENGTH)
        # PC/SC part 3: Le 00 = the whole UID; a shorter Le gets 6C XX, a longer one the UID and 62 82.
        if apdu.le < len(self.uid):
            return Response(b"", codec.SW_WRONG_LE | len(self.uid))
        if apdu.le > len(self.uid) and apdu.le != 256:
            return Response(self.uid, codec.SW_END_OF_DATA)
        return Response(self.uid, codec.SW_OK)


class VpcdCard:
    """Presents virtual cards to the vpcd reader at ``host:port``, one at a time.

    ``tap(uid)`` is what testers use: the card is presented, held ``hold_s`` after the reader first
    notices it, and taken away. ``present``/``remove`` split that in two. A thread per presentation
    answers vpcd; ``remove`` (or ``close``) joins it. Safe to call from any thread.
    """

    def __init__(self, host: str = VPCD_HOST, port: int = VPCD_PORT, *,
                 on_event: Callable[[str], None] | None = None) -> None:
        self.host = host
        self.port = port
        self.on_event = on_event
        self._lock = threading.Lock()
        self._sock_lock = threading.Lock()    # guards _sock, which the card's thread replaces on a reconnect
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._card: VirtualCard | None = None
        self._delay_s = 0.0
        self._detected = threading.Event()
        self._removing = threading.Event()

    @property
    def present_uid(self) -> str | None:
        """The UID of the card in the field, or None."""
        card = self._card
        return card.stats.uid if card is not None else None

    @property
    def stats(self) -> CardStats | None:
        """A copy of what vpcd has asked of the card in the field so far, or None when no card is there."""
        card = self._card
        return replace(card.stats) if card is not None else None

    def present(self, uid: str | bytes, *, error_sw: int | str | None = None, delay_s: float = 0.0,
                card_name: int = codec.CARD_MIFARE_CLASSIC_1K) -> None:
        """Put a card in the reader's field (connect to vpcd). SimError if vpcd does not listen."""
        uid_bytes = uid if isinstance(uid, bytes) else parse_uid(uid)
        sw = parse_sw(error_sw) if error_sw is not None else None
        if delay_s < 0:
            raise SimError(f"the answer delay must not be negative, got {delay_s}")
        with self._lock:
            if self._card is not None:
                raise SimError(f"card {self._card.stats.uid} is still on the reader — remove it first")
            with _last_removal_lock:
                left = _last_removal.get((self.host, self.port))
            if left is not None:
                time.sleep(max(0.0, left + ABSENT_S - time.monotonic()))
            try:
                sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
            except OSError as exc:
                raise SimError(f"no vpcd card reader listens on {self.host}:{self.port} ({exc.strerror or exc}) "
                               "— is pcscd running with vsmartcard-vpcd?") from None
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            card = VirtualCard(uid_bytes, card_name=card_name, error_sw=sw)
            card.stats.connected_at = time.perf_counter()
            self._card, self._sock, self._delay_s = card, sock, float(delay_s)
            self._detected.clear()
            self._removing.clear()
            self._thread = threading.Thread(target=self._serve, args=(sock, card), daemon=True,
                                            name=f"vpcd-card-{card.stats.uid}")
            self._thread.start()
        faults = (f", answers GET UID with {codec.describe_sw(sw)}" if sw is not None else "") + \
                 (f", answers {delay_s * 1000:.0f} ms late" if delay_s else "")
        self._emit(f"card {card.stats.uid} presented to the vpcd reader{faults}")

    def wait_detected(self, timeout: float = DETECT_TIMEOUT_S) -> bool:
        """Until the reader has noticed the presented card (vpcd's first poll); whether it has."""
        return self._detected.wait(timeout)

    def remove(self) -> CardStats | None:
        """Take the card away (close the connection); its stats, or None if no card was presented."""
        with self._lock:
            card, sock, thread = self._card, self._sock, self._thread
            if card is None or sock is None or thread is None:
                return None
            with self._sock_lock:
                self._removing.set()
                sock = self._sock
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            thread.join()
            sock.close()
            card.stats.removed_at = time.perf_counter()
            with _last_removal_lock:
                _last_removal[(self.host, self.port)] = time.monotonic()
            self._card = self._sock = self._thread = None
        self._emit(f"card {card.stats.uid} taken off the vpcd reader "
                   f"({card.stats.atr_requests} polls, {card.stats.uid_reads} UID reads)")
        return card.stats

    def tap(self, uid: str | bytes, hold_s: float = HOLD_S, *, error_sw: int | str | None = None,
            delay_s: float = 0.0, detect_timeout_s: float = DETECT_TIMEOUT_S) -> CardStats:
        """Present a card, hold it ``hold_s`` from the moment the reader notices it, take it away.

        Returns what vpcd asked of it. SimError if vpcd does not listen or never polls the card (pcscd
        is not watching the reader).
        """
        if hold_s < 0:
            raise SimError(f"the hold time must not be negative, got {hold_s}")
        self.present(uid, error_sw=error_sw, delay_s=delay_s)
        try:
            if not self.wait_detected(detect_timeout_s):
                raise SimError(f"the vpcd reader at {self.host}:{self.port} did not poll the card within "
                               f"{detect_timeout_s:g} s — is pcscd watching it?")
            self._removing.wait(hold_s)
        finally:
            stats = self.remove()
        assert stats is not None
        return stats

    def close(self) -> None:
        """Remove any card still presented. Idempotent."""
        self.remove()

    # ----------------------------------------------------------------- the connection's thread

    def _serve(self, sock: socket.socket, card: VirtualCard) -> None:
        try:
            while True:
                self._answer(sock, card)
                if self._removing.is_set():
                    return
                # vpcd closed the connection (pcscd stopped): the card stays in the field for the reader's return.
                self._emit(f"the reader went away (pcscd stopped); card {card.stats.uid} stays in its field")
                replacement = self._reconnect()
                if replacement is None:
                    return
                sock.close()
                sock = replacement
                card.stats.reconnects += 1
                self._emit(f"the reader is back; card {card.stats.uid} is still in its field")
        except Exception:
            LOGGER.exception("virtual card %s: unexpected error; the card leaves the field", card.stats.uid)

    def _reconnect(self) -> socket.socket | None:
        """Connect again once vpcd listens; None when the card is removed first."""
        while not self._removing.wait(RECONNECT_S):
            try:
                sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._sock_lock:
                if self._removing.is_set():
                    sock.close()
                    return None
                self._sock = sock
            return sock
        return None

    def _answer(self, sock: socket.socket, card: VirtualCard) -> None:
        """Answer vpcd on one connection until it closes (vpcd went away) or the card is removed."""
        buf = bytearray()
        while True:
            try:
                chunk = sock.recv(4096)
            except OSError:
                return
            if not chunk:
                return      # removed by us, or vpcd closed the connection (pcscd stopped)
            _quick_ack(sock)
            buf += chunk
            while True:
                consumed, message = decode_message(bytes(buf))
                if message is None and consumed == 0:
                    break
                del buf[:consumed]
                if card.stats.detected_at is None:
                    card.stats.detected_at = time.perf_counter()
                    self._detected.set()
                reply = card.handle(message or b"")
                if reply is None:
                    continue
                if len(message or b"") > 1 and self._delay_s and self._removing.wait(self._delay_s):
                    return
                try:
                    sock.sendall(encode_message(reply))
                except OSError:
                    return

    def _emit(self, message: str) -> None:
        LOGGER.info("vpcd: %s", message)
        if self.on_event is not None:
            self.on_event(message)


def _quick_ack(sock: socket.socket) -> None:
    # vpcd sends power on/off unanswered and then the next request at once: with a delayed ACK from us,
    # Nagle on vpcd's side holds that request ~40 ms. A card in a reader's field answers at once.
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
    except (AttributeError, OSError):
        pass
