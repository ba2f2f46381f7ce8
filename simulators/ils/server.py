"""The simulated ILS's SIP2 server: TCP, a thread per connection, the gateway's own codec (gateway.sip2.codec).

Each connection logs in first (93 with the configured user and password; a wrong one gets 94 ok=0 and nothing
else is answered but 99). Answers carry the request's sequence number and a checksum when the request had one.
A garbled request is answered with 96 (please resend); a 97 gets the last answer again.

Faults, for testers and tests (``Faults``; `kiosk-sim ctl DIR <fault>`): ``down`` (connections refused, the
open ones dropped) and ``up``; ``drop`` (apply the next N requests, or those of one message type, then close
the connection without answering: the exactly-once case); ``slow`` (every answer ``ms`` late); ``badsum`` (the
next N answers' checksums wrong); ``garbage`` (the next N answers replaced by noise); ``refuse`` (the next N
transactions, or an item's, answered ok=0 with a screen message); ``heal`` clears them all.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from gateway.sip2 import codec
from gateway.sip2.codec import Sip2ChecksumError, Sip2FormatError
from simulators.ils.library import Library

LOGGER = logging.getLogger(__name__)

SUPPORTED = "YYYYYNNYYYYNNNNN"      # BX: which messages this ILS supports (patron status, checkout, checkin, …)
TIMEOUT_TENTHS = "050"              # the 98's timeout period: 5 s
RETRIES = "003"
NAMES = {"11": "checkout", "09": "checkin", "17": "item_information", "63": "patron_information",
         "23": "patron_status", "35": "end_session", "99": "sc_status", "93": "login"}


@dataclass
class Faults:
    down: bool = False
    drop_next: int = 0
    drop_kind: str | None = None              # drop every request of this kind ("checkout", …)
    slow_ms: int = 0
    badsum_next: int = 0
    garbage_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def heal(self) -> None:
        with self.lock:
            self.down, self.drop_next, self.drop_kind, self.slow_ms = False, 0, None, 0
            self.badsum_next = self.garbage_next = 0

    def take(self, name: str) -> int:
        """Count one use of a one-shot fault; True (1) if it applies now."""
        with self.lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return 1
            return 0

    def to_dict(self) -> dict:
        return {"down": self.down, "drop_next": self.drop_next, "drop_kind": self.drop_kind,
                "slow_ms": self.slow_ms, "badsum_next": self.badsum_next, "garbage_next": self.garbage_next}


def _flags(patron) -> str:
    """The 14 patron status flags: charge privileges denied (blocked, expired, lost), …, too many overdue."""
    denied = "Y" if patron.status in ("blocked", "expired", "lost") else " "
    overdue = "Y" if patron.status == "overdue" else " "
    return denied + denied + " " + " " + " " + " " + " " + " " + " " + " " + overdue + " " + " " + " "


class IlsServer:
    """``start()`` listens on ``port`` (0: a free one, see ``port`` after); ``stop()`` closes everything."""

    def __init__(self, library: Library, *, host: str = "127.0.0.1", port: int = 0, user: str = "citybook",
                 password: str = "sip2-password", charset: str = "utf-8", latency_ms: int = 0,
                 institution: str = "CN-310112", location: str = "MH-BOOKCASES") -> None:
        self.library = library
        self.host, self.port = host, port
        self.user, self.password, self.charset = user, password, charset
        self.latency_ms = latency_ms
        self.institution, self.location = institution, location
        self.faults = Faults()
        self.requests = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> IlsServer:
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, name="ils-accept", daemon=True)
        self._thread.start()
        return self

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        sock.settimeout(0.2)
        self.port = sock.getsockname()[1]
        self._listener = sock

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._close_listener()
        self._drop_all()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            sock.close()

    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def go_down(self) -> None:
        """The ILS goes away: new connections are refused, the open ones dropped."""
        self.faults.down = True
        self._close_listener()
        self._drop_all()

    def come_up(self) -> None:
        self.faults.down = False
        if self._listener is None:
            self._listen()

    # --- connections ------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            if listener is None:
                time.sleep(0.05)
                continue
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                time.sleep(0.05)                     # closed under us (go_down): wait for come_up
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="ils-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        session = {"logged_in": False, "last": b""}
        buffer = b""
        try:
            while not self._stop.is_set():
                if b"\r" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    if len(buffer) > codec.MAX_FRAME and b"\r" not in buffer:
                        LOGGER.warning("ILS: a line over %d bytes: dropping the connection", codec.MAX_FRAME)
                        return
                    continue
                line, _, buffer = buffer.partition(b"\r")
                answer = self._answer(line.lstrip(b"\n") + b"\r", session)
                if answer is None:
                    return                            # a dropped answer: the connection goes with it
                if self.faults.slow_ms or self.latency_ms:
                    time.sleep((self.faults.slow_ms + self.latency_ms) / 1000)
                conn.sendall(answer)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def _answer(self, frame: bytes, session: dict) -> bytes | None:
        try:
            decoded = codec.decode(frame, self.charset)
        except Sip2ChecksumError:
            return codec.encode(codec.RequestSCResend(), seq=None, charset=self.charset)
        except Sip2FormatError as exc:
            LOGGER.info("ILS: not a SIP2 request (%s): asking for it again", exc)
            return codec.encode(codec.RequestSCResend(), seq=None, charset=self.charset)
        msg, seq = decoded.message, decoded.sequence
        if isinstance(msg, codec.RequestACSResend):
            return session["last"] or codec.encode(codec.RequestSCResend(), seq=None, charset=self.charset)
        self.requests += 1
        kind = NAMES.get(frame[:2].decode("ascii", "replace"), "?")
        response = self._handle(msg, session)
        if response is None:
            return b""
        extra = b""
        if isinstance(response, _WithBorrower):
            extra = f"{codec.BORROWER}{response.borrower}|".encode(self.charset) if response.borrower else b""
            response = response.response
        out = self._frame(response, seq, extra)
        if self.faults.drop_kind == kind or (kind not in ("login", "sc_status") and self.faults.take("drop_next")):
            LOGGER.info("ILS: %s applied, the connection dropped before the answer (a fault)", kind)
            return None
        session["last"] = out                    # a 97 gets it again, whole: the damage below is "on the wire"
        if self.faults.take("garbage_next"):
            return b"\x00\xffNOT SIP2 \xfe garbage\r"
        if seq is not None and self.faults.take("badsum_next"):
            return out[:-5] + (b"0000" if out[-5:-1] != b"0000" else b"FFFF") + b"\r"
        return out

    def _frame(self, response, seq: int | None, extra: bytes) -> bytes:
        """The answer's bytes: its fields, ``extra`` fields after them, then the AY/AZ trailer if asked for."""
        body = codec.encode(response, seq=None, charset=self.charset, error_detection=False)[:-1] + extra
        if seq is None:
            return body + b"\r"
        prefix = body + b"AY" + str(seq).encode() + b"AZ"
        return prefix + codec.calculate_checksum(prefix).encode("ascii") + b"\r"

    # --- messages --------------------------------------------------------------------------------------

    def _now(self) -> str:
        return codec.sip_date(self.library.clock())

    def _handle(self, msg, session: dict):
        if isinstance(msg, codec.LoginRequest):
            session["logged_in"] = msg.login_user_id == self.user and msg.login_password == self.password
            return codec.LoginResponse(ok="1" if session["logged_in"] else "0")
        if isinstance(msg, codec.SCStatusRequest):
            return codec.ACSStatusResponse(
                online_status="Y", checkin_ok="Y", checkout_ok="Y", acs_renewal_policy="N", status_update_ok="N",
                offline_ok="N", timeout_period=TIMEOUT_TENTHS, retries_allowed=RETRIES, date_time_sync=self._now(),
                protocol_version="2.00", institution_id=self.institution, library_name="闵行区图书馆 (simulated)",
                supported_messages=SUPPORTED, terminal_location=self.location)
        if not session["logged_in"]:
            return None                               # no answer but to 93 and 99 before a login
        if isinstance(msg, codec.CheckoutRequest):
            return self._checkout(msg)
        if isinstance(msg, codec.CheckinRequest):
            return self._checkin(msg)
        if isinstance(msg, codec.ItemInformationRequest):
            return self._item_information(msg)
        if isinstance(msg, (codec.PatronInformationRequest, codec.PatronStatusRequest)):
            return self._patron(msg)
        if isinstance(msg, codec.EndPatronSessionRequest):
            return codec.EndSessionResponse(end_session="Y", transaction_date=self._now(),
                                            institution_id=msg.institution_id, patron_identifier=msg.patron_identifier)
        return None

    def _checkout(self, msg) -> codec.CheckoutResponse:
        outcome = self.library.checkout(msg.patron_identifier, msg.item_identifier, no_block=msg.no_block == "Y",
                                        date=codec.parse_sip_date(msg.transaction_date))
        item = outcome.item
        return codec.CheckoutResponse(
            ok="1" if outcome.ok else "0", renewal_ok="N", magnetic_media="N", desensitize="Y" if outcome.ok else "N",
            transaction_date=self._now(), institution_id=msg.institution_id, patron_identifier=msg.patron_identifier,
            item_identifier=msg.item_identifier, title_identifier=item.title if item else "",
            due_date=codec.sip_date(item.due) if outcome.ok and item and item.due else "",
            screen_message=(outcome.message,) if outcome.message else ())

    def _checkin(self, msg) -> codec.CheckinResponse:
        outcome = self.library.checkin(msg.item_identifier, return_date=codec.parse_sip_date(msg.return_date),
                                       no_block=msg.no_block == "Y")
        item = outcome.item
        return codec.CheckinResponse(
            ok="1" if outcome.ok else "0", resensitize="Y" if outcome.ok else "N", magnetic_media="N", alert="N",
            transaction_date=self._now(), institution_id=msg.institution_id, item_identifier=msg.item_identifier,
            permanent_location=self.location, title_identifier=item.title if item else None,
            patron_identifier=outcome.patron.id if outcome.patron else None,
            screen_message=(outcome.message,) if outcome.message else ())

    def _item_information(self, msg):
        item = self.library.item(msg.item_identifier)
        if item is None:
            return codec.ItemInformationResponse(
                circulation_status="01", security_marker="00", fee_type="01", transaction_date=self._now(),
                item_identifier=msg.item_identifier, title_identifier="", screen_message=("Item not found",))
        status = "12" if item.lost else "04" if item.borrower else "08" if item.hold_for else "03"
        return _WithBorrower(codec.ItemInformationResponse(
            circulation_status=status, security_marker="02", fee_type="01", transaction_date=self._now(),
            due_date=codec.sip_date(item.due) if item.due else None, item_identifier=item.id,
            title_identifier=item.title, permanent_location=self.location), item.borrower)

    def _patron(self, msg):
        patron, charged = self.library.patron(msg.patron_identifier)
        if patron is None:
            flags, valid, name = "Y" * 4 + " " * 10, "N", ""
        else:
            flags, valid, name = _flags(patron), "Y", patron.name
        if isinstance(msg, codec.PatronStatusRequest):
            return codec.PatronStatusResponse(
                patron_status=flags, language=msg.language, transaction_date=self._now(),
                institution_id=msg.institution_id, patron_identifier=msg.patron_identifier, personal_name=name,
                valid_patron=valid)
        return codec.PatronInformationResponse(
            patron_status=flags, language=msg.language, transaction_date=self._now(), hold_items_count="0000",
            overdue_items_count="0000" if not patron or patron.status != "overdue" else "0001",
            charged_items_count=f"{charged + (patron.loans_elsewhere if patron else 0):04d}",
            fine_items_count="0000", recall_items_count="0000", unavailable_holds_count="0000",
            institution_id=msg.institution_id, patron_identifier=msg.patron_identifier, personal_name=name,
            valid_patron=valid, charged_items_limit=f"{patron.limit:04d}" if patron else None)


class _WithBorrower:
    """An item information response plus our extension field XB (the borrower), added after encoding."""

    def __init__(self, response, borrower: str | None) -> None:
        self.response, self.borrower = response, borrower
