"""The simulated ILS's SIP2 server: TCP, a thread per connection, the gateway's own codec (gateway.sip2.codec).

Each connection logs in first (93 with the configured user and password; a wrong one gets 94 ok=0 and the
connection is closed, as Koha's SIP server does; any other request before a login, except 99, closes it too).
Answers carry the request's sequence number and a checksum when the request had one. A garbled request is
answered with 96 (please resend); a 97 gets the last answer again. Item information (18) names the borrower in
the extension field ZB (gateway.sip2.messages.BORROWER_FIELD).

Faults, for testers and tests (``Faults``; `kiosk-sim ils-ctl DIR <fault>`): ``down`` (connections refused, the
open ones dropped) and ``up``; ``drop`` (apply the next N requests, or every one of a message type, then close
the connection without answering: the exactly-once case); ``slow`` (every answer ``ms`` late, after applying);
``badsum`` (the next N answers' checksums wrong); ``garbage`` (the next N answers replaced by noise); ``huge``
(the next N answers carry a 70 KiB screen message, over any sane line limit); ``refuse`` (the next N
transactions, or an item's, answered ok=0 with a screen message: Library); ``heal`` clears them all.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from gateway.sip2 import codec
from gateway.sip2.errors import Sip2FormatError
from gateway.sip2.messages import (NAMES, CheckinRequest, CheckinResponse, CheckoutRequest, CheckoutResponse,
                                   EndPatronSessionRequest, EndSessionResponse, ItemInformationRequest,
                                   ItemInformationResponse, LoginRequest, LoginResponse, PatronInformationRequest,
                                   PatronInformationResponse, PatronStatusRequest, PatronStatusResponse,
                                   RequestAcsResend, RequestScResend, ScStatusRequest, ScStatusResponse)
from simulators.ils.library import Library, Patron

LOGGER = logging.getLogger(__name__)

SUPPORTED = "YYYNYNYYYYYNNNNN"      # BX: patron status, checkout, checkin, SC/ACS status, resend, login, patron
                                    # information, end session, item information (fee paid, hold … not)
KINDS = {"checkout": "11", "checkin": "09", "item_information": "17", "patron_status": "23",
         "patron_information": "63", "end_session": "35", "sc_status": "99", "login": "93"}
HUGE_BYTES = 70 * 1024
LISTEN_AGAIN_S = 2.0               # up after down: how long the port may still be held
GARBAGE = b"\x00\xffNOT SIP2 \xfe garbage"


@dataclass
class Faults:
    down: bool = False
    drop_next: int = 0
    drop_kind: str | None = None              # drop every request of this message type ("11" …), until heal
    slow_ms: int = 0
    badsum_next: int = 0
    garbage_next: int = 0
    huge_next: int = 0
    fired: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def heal(self) -> None:
        with self.lock:
            self.down, self.drop_next, self.drop_kind, self.slow_ms = False, 0, None, 0
            self.badsum_next = self.garbage_next = self.huge_next = 0

    def take(self, name: str) -> bool:
        """Use up one of a one-shot fault (``badsum_next`` …): True if it applies to this answer."""
        with self.lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                self.fired[name] = self.fired.get(name, 0) + 1
                return True
            return False

    def to_dict(self) -> dict:
        with self.lock:
            return {"down": self.down, "drop_next": self.drop_next, "drop_kind": self.drop_kind,
                    "slow_ms": self.slow_ms, "badsum_next": self.badsum_next, "garbage_next": self.garbage_next,
                    "huge_next": self.huge_next, "fired": dict(self.fired)}


def patron_flags(patron: Patron | None, charged: int, overdue: int) -> str:
    """The 14 patron status flags (gateway.sip2.messages.PATRON_STATUS_FLAGS) the ILS reports."""
    if patron is None:
        return "YYYY" + " " * 10
    flags = [" "] * 14
    if patron.status in ("blocked", "expired", "lost", "overdue"):
        flags[0] = flags[1] = "Y"              # charge and renewal privileges denied
    if patron.status in ("blocked", "lost"):
        flags[3] = "Y"                         # hold privileges denied
    if patron.status == "lost":
        flags[4] = "Y"                         # card reported lost
    if charged + patron.loans_elsewhere >= patron.limit:
        flags[5] = "Y"                         # too many items charged
    if patron.status == "overdue" or overdue:
        flags[6] = "Y"                         # too many items overdue
    return "".join(flags)


class _Session:
    def __init__(self, n: int) -> None:
        self.n = n
        self.logged_in = False
        self.last = b""                        # the last answer, clean: what a 97 gets


class _Drop(Exception):
    """Close the connection without answering."""


class _LoginRefused(Exception):
    """Send the 94 ok=0, then close the connection."""

    def __init__(self, answer: bytes) -> None:
        super().__init__("login refused")
        self.answer = answer


class IlsServer:
    """``start()`` listens on ``port`` (0: a free one, see ``port`` after); ``stop()`` closes everything."""

    def __init__(self, library: Library, *, host: str = "127.0.0.1", port: int = 0, user: str = "citybook",
                 password: str = "sip2-password", charset: str = "utf-8", latency_ms: float = 0,
                 institution: str = "CN-310112", timeout_period: int = 50, retries_allowed: int = 3) -> None:
        self.library = library
        self.host, self.port = host, port
        self.user, self.password, self.charset = user, password, charset
        self.latency_ms = latency_ms
        self.institution = institution
        self.timeout_period, self.retries_allowed = timeout_period, retries_allowed
        self.faults = Faults()
        self.stats = {"connections": 0, "logins": 0, "logins_refused": 0, "requests": {}, "garbled": 0,
                      "resends": 0, "dropped": 0}
        self._listener: socket.socket | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> IlsServer:
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, name="ils-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._close_listener()
        for thread in self._drop_all():
            thread.join(5)

    def _listen(self) -> None:
        deadline = time.monotonic() + LISTEN_AGAIN_S
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
                sock.listen(64)
                break
            except OSError as exc:
                sock.close()
                # up right after down: the old listener lives until the accept thread's poll returns
                if exc.errno != errno.EADDRINUSE or not self.port or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._listener = sock

    def _close_listener(self) -> None:
        with self._lock:
            sock, self._listener = self._listener, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)       # wakes the accept thread's poll
            except OSError:
                pass
            sock.close()

    def _drop_all(self) -> list[threading.Thread]:
        with self._lock:
            conns = list(self._conns.items())
        for conn, _ in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return [t for _, t in conns]

    def go_down(self) -> None:
        """The ILS goes away: new connections are refused, the open ones dropped."""
        self.faults.down = True
        self._close_listener()
        self._drop_all()

    def come_up(self) -> None:
        self.faults.down = False
        if self._listener is None:
            self._listen()

    def snapshot(self) -> dict:
        with self._lock:
            open_ = len(self._conns)
        return {"port": self.port, "up": not self.faults.down, "open_connections": open_, **self.stats,
                "faults": self.faults.to_dict()}

    # --- connections ------------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            if listener is None:
                self._stop.wait(0.05)
                continue
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                self._stop.wait(0.05)                 # closed under us (go_down): wait for come_up
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.stats["connections"] += 1
                n = self.stats["connections"]
                thread = threading.Thread(target=self._serve, args=(conn, _Session(n)), name=f"ils-conn-{n}",
                                          daemon=True)
                self._conns[conn] = thread
            thread.start()

    def _serve(self, conn: socket.socket, session: _Session) -> None:
        buffer = bytearray()
        try:
            while not self._stop.is_set():
                consumed, line = codec.next_line(buffer)
                if line is None:
                    del buffer[:consumed]
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                del buffer[:consumed]
                if not line.strip(b"\n "):
                    continue
                answer = self._answer(line, session)
                if answer:
                    conn.sendall(answer)
        except Sip2FormatError as exc:
            LOGGER.warning("ILS: connection %d: %s; closing it", session.n, exc)
        except _LoginRefused as refused:
            try:
                conn.sendall(refused.answer)          # 94 ok=0, then the connection closes
            except OSError:
                pass
        except _Drop:
            with self._lock:
                self.stats["dropped"] += 1
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.pop(conn, None)
            conn.close()

    def _answer(self, line: bytes, session: _Session) -> bytes:
        try:
            frame = codec.decode_frame(line, self.charset)
        except Sip2FormatError as exc:
            LOGGER.info("ILS: connection %d: a garbled request (%s): asking for it again (96)", session.n, exc)
            with self._lock:
                self.stats["garbled"] += 1
            return codec.encode(RequestScResend(), charset=self.charset)
        msg = frame.message
        if isinstance(msg, RequestAcsResend):
            with self._lock:
                self.stats["resends"] += 1
            return self._damage(session.last) if session.last else codec.encode(RequestScResend(),
                                                                                  charset=self.charset)
        with self._lock:
            self.stats["requests"][msg.command] = self.stats["requests"].get(msg.command, 0) + 1
        if isinstance(msg, LoginRequest):
            session.logged_in = msg.user == self.user and msg.password == self.password
            with self._lock:
                self.stats["logins" if session.logged_in else "logins_refused"] += 1
            out = self._encode(LoginResponse(ok=session.logged_in), frame)
            if not session.logged_in:
                LOGGER.info("ILS: connection %d: login of %r refused", session.n, msg.user)
                raise _LoginRefused(out)
            session.last = out
            return out
        if not session.logged_in and not isinstance(msg, ScStatusRequest):
            LOGGER.info("ILS: connection %d: %s before a login: closing", session.n, NAMES.get(msg.command))
            raise _Drop()
        response = self._handle(msg)
        if response is None:
            return b""
        if msg.command not in ("93", "99") and (self.faults.drop_kind == msg.command or self.faults.take("drop_next")):
            LOGGER.info("ILS: connection %d: %s applied, the connection dropped before the answer (a fault)",
                        session.n, NAMES.get(msg.command))
            raise _Drop()
        wait_ms = self.latency_ms + self.faults.slow_ms
        if wait_ms and self._stop.wait(wait_ms / 1000):
            raise _Drop()
        if self.faults.take("huge_next"):
            response = dataclasses.replace(response, screen_messages=response.screen_messages + ("x" * HUGE_BYTES,))
        out = self._encode(response, frame)
        session.last = out
        return self._damage(out)

    def _encode(self, response, frame: codec.Frame) -> bytes:
        return codec.encode(response, seq=frame.seq or 0, charset=self.charset, error_detection=frame.checksummed,
                            max_field=None)

    def _damage(self, out: bytes) -> bytes:
        """The answer as the wire delivers it, with the faults asked for."""
        if self.faults.take("garbage_next"):
            return GARBAGE + b"\r"
        if self.faults.take("badsum_next"):
            if out[-7:-5] == b"AZ":
                return out[:-5] + (b"0000" if out[-5:-1] != b"0000" else b"FFFF") + b"\r"
            return out[:-1] + b"AZ0000\r"
        return out

    # --- messages --------------------------------------------------------------------------------------

    def _now(self) -> str:
        return codec.sip_date(self.library.clock())

    def _handle(self, msg):
        if isinstance(msg, ScStatusRequest):
            return ScStatusResponse(
                online=True, checkin_ok=True, checkout_ok=True, renewal_policy=False, status_update_ok=False,
                offline_ok=True, timeout_period=self.timeout_period, retries_allowed=self.retries_allowed,
                date_time_sync=self._now(), institution=self.institution, library_name="闵行区图书馆 (simulated ILS)",
                supported_messages=SUPPORTED)
        if isinstance(msg, CheckoutRequest):
            return self._checkout(msg)
        if isinstance(msg, CheckinRequest):
            return self._checkin(msg)
        if isinstance(msg, ItemInformationRequest):
            return self._item_information(msg)
        if isinstance(msg, (PatronInformationRequest, PatronStatusRequest)):
            return self._patron(msg)
        if isinstance(msg, EndPatronSessionRequest):
            return EndSessionResponse(end_session=True, transaction_date=self._now(), institution=msg.institution,
                                      patron_id=msg.patron_id)
        return None                                   # a response type sent to us: nothing to say

    def _checkout(self, msg: CheckoutRequest) -> CheckoutResponse:
        outcome = self.library.checkout(msg.patron_id, msg.item_id, no_block=msg.no_block,
                                        date=codec.parse_sip_date(msg.transaction_date))
        item = outcome.item
        return CheckoutResponse(
            ok=outcome.ok, renewal_ok=False, magnetic_media=False, desensitize=outcome.ok,
            transaction_date=self._now(), institution=msg.institution, patron_id=msg.patron_id,
            item_id=msg.item_id, title=item.title if item else "",
            due_date=codec.sip_date(item.due) if outcome.ok and item and item.due else "",
            screen_messages=(outcome.message,) if outcome.message else ())

    def _checkin(self, msg: CheckinRequest) -> CheckinResponse:
        outcome = self.library.checkin(msg.item_id, return_date=codec.parse_sip_date(msg.return_date),
                                       no_block=msg.no_block, location=msg.location)
        item = outcome.item
        return CheckinResponse(
            ok=outcome.ok, resensitize=outcome.ok, magnetic_media=False, alert=outcome.alert_type is not None,
            transaction_date=self._now(), institution=msg.institution, item_id=msg.item_id,
            permanent_location=item.home if item else "", title=item.title if item else None,
            patron_id=outcome.borrower, alert_type=outcome.alert_type,
            screen_messages=(outcome.message,) if outcome.message else ())

    def _item_information(self, msg: ItemInformationRequest) -> ItemInformationResponse:
        item = self.library.item(msg.item_id)
        if item is None:
            return ItemInformationResponse(
                circulation_status="01", security_marker="00", fee_type="01", transaction_date=self._now(),
                item_id=msg.item_id, title="", screen_messages=("Item not in the catalogue",))
        status = "12" if item.lost else "04" if item.borrower else "08" if item.hold_for else "03"
        return ItemInformationResponse(
            circulation_status=status, security_marker="02", fee_type="01", transaction_date=self._now(),
            hold_queue_length="1" if item.hold_for else "0", due_date=codec.sip_date(item.due) if item.due else None,
            item_id=item.id, title=item.title, owner=self.institution, permanent_location=item.home,
            current_location=item.location, patron_id=item.borrower)

    def _patron(self, msg):
        patron, charged = self.library.patron(msg.patron_id)
        now = self.library.clock()
        overdue = [i for i in charged if i.due and i.due < now]
        flags = patron_flags(patron, len(charged), len(overdue))
        name = patron.name if patron else ""
        screen = ("Unknown patron",) if patron is None else ()
        if isinstance(msg, PatronStatusRequest):
            return PatronStatusResponse(
                patron_status=flags, language=msg.language, transaction_date=self._now(), institution=msg.institution,
                patron_id=msg.patron_id, personal_name=name, valid_patron=patron is not None, screen_messages=screen)
        holds = self.library.holds_of(msg.patron_id) if patron else []
        lists = {"hold": [i.id for i in holds], "overdue": [i.id for i in overdue],
                 "charged": [i.id for i in charged]}
        wanted = {name_: "Y" == msg.summary[n] for n, name_ in enumerate(("hold", "overdue", "charged"))}
        start, end = msg.start_item or 1, msg.end_item or 9999

        def listed(kind: str) -> tuple[str, ...]:
            return tuple(lists[kind][start - 1:end]) if wanted[kind] else ()
        return PatronInformationResponse(
            patron_status=flags, language=msg.language, transaction_date=self._now(),
            hold_items_count=len(holds), overdue_items_count=len(overdue),
            charged_items_count=len(charged) + (patron.loans_elsewhere if patron else 0),
            fine_items_count=0, recall_items_count=0, unavailable_holds_count=0, institution=msg.institution,
            patron_id=msg.patron_id, personal_name=name, charged_items_limit=patron.limit if patron else None,
            valid_patron=patron is not None, hold_items=listed("hold"), overdue_items=listed("overdue"),
            charged_items=listed("charged"), screen_messages=screen)

