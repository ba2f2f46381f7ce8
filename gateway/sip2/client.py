"""One SIP2 connection to the ILS: logged in (93/94), one request at a time, resends, timeouts, typed answers.

SIP2's rules kept here:
- one request at a time on a connection, each with the next sequence number (AY 0-9) when error detection
  (AY/AZ) is on; the answer must carry the same number;
- a garbled answer (bad checksum, not SIP2, the wrong sequence number or type) is asked for again with 97, at
  most ``resends`` times (or the ACS status's "retries allowed", if smaller); the ACS may ask us for ours with
  96, which we send again within the same budget (it did not act on a request it could not read);
- after login, SC status (99/98) learns the ACS's rules: on-line, its timeout period (tenths of a second: how
  long it may take before it aborts a transaction, so we wait at least that long, 000 and 999 meaning none
  given) and its retries allowed.

Errors, the gateway's exactly-once rule rests on them: ``Sip2Unavailable`` — no connection or login (or the ILS
closed an idle connection), so the request was NOT sent; ``Sip2Lost`` — the request was (or may have been) sent
and no valid answer came (a drop, a timeout, garbage after every resend, an answer over MAX_LINE_BYTES): its
outcome is unknown, ask the ILS before sending it again. After either the connection is closed: the next
``connect()`` starts afresh.
"""

from __future__ import annotations

import codecs
import logging
import select
import socket
import threading
import time
from datetime import datetime

from gateway.sip2 import codec
from gateway.sip2.errors import Sip2Error, Sip2FormatError, Sip2LoginRefused, Sip2Lost, Sip2Unavailable
from gateway.sip2.messages import (SUMMARY_ITEMS, CheckinRequest, CheckinResponse, CheckoutRequest,
                                   CheckoutResponse, EndPatronSessionRequest, EndSessionResponse,
                                   ItemInformationRequest, ItemInformationResponse, LoginRequest, LoginResponse,
                                   Message, PatronInformationRequest, PatronInformationResponse, PatronStatusRequest,
                                   PatronStatusResponse, RequestAcsResend, RequestScResend, ScStatusRequest,
                                   ScStatusResponse)

LOGGER = logging.getLogger(__name__)

LANGUAGE = "019"             # SIP2's "Chinese": an ILS that localises its screen messages answers in Chinese
UNKNOWN = 999                # 98: timeout period / retries allowed not given


class Sip2Client:
    """A SIP2 connection. ``connect()`` logs in and reads the ACS status; each request method sends one message
    and returns the ILS's typed answer (gateway.sip2.messages), or raises Sip2Unavailable / Sip2Lost."""

    def __init__(self, host: str, port: int, *, user: str, password: str, location: str = "",
                 institution: str = "", charset: str = "utf-8", timeout_s: float = 10.0,
                 connect_timeout_s: float = 10.0, resends: int = 3, error_detection: bool = True,
                 terminal_password: str = "", max_line: int = codec.MAX_LINE_BYTES) -> None:
        codecs.lookup(charset)                       # LookupError now, not at the first message
        self.host, self.port = host, port
        self.user, self.password, self.location, self.institution = user, password, location, institution
        self.charset = charset
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.resends = resends
        self.error_detection = error_detection
        self.terminal_password = terminal_password
        self.max_line = max_line
        self.acs: ScStatusResponse | None = None     # the last 98: the ACS's rules
        self.last_used = time.monotonic()
        self.in_flight = False                       # a request is out and its answer not read
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._seq = 0
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    @property
    def where(self) -> str:
        return f"the ILS at {self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"Sip2Client({self.host}:{self.port}, {'connected' if self.connected else 'closed'})"

    # --- lifecycle ----------------------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect, log in (93), read the ACS status (99). Sip2Unavailable if any of it fails (the ACS off-line
        included); Sip2LoginRefused if the ILS says no to the user and password."""
        if self._sock is not None:
            return
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        except OSError as exc:
            raise Sip2Unavailable(f"cannot connect to {self.where}: {exc.strerror or exc}") from None
        self._sock, self._buffer, self._seq, self.acs = sock, bytearray(), 0, None
        try:
            login = self._exchange(LoginRequest(user=self.user, password=self.password,
                                                location=self.location or None), LoginResponse)
            if not login.ok:
                raise Sip2LoginRefused(f"{self.where} refused the SIP2 login of user {self.user!r} (94 ok=0): "
                                       "check [ils] user and password_file, and the account at the ILS")
            acs = self.sc_status()
            if acs.online is False:
                raise Sip2Unavailable(f"{self.where} says it is off-line (98 on-line status N)")
        except Sip2Unavailable:
            self.close()
            raise
        except Sip2Error as exc:
            self.close()
            raise Sip2Unavailable(f"logging in to {self.where}: {exc}") from None
        LOGGER.info("SIP2: logged in to %s:%d as %s (%s; ACS timeout %s, retries %s)", self.host, self.port,
                    self.user, self.charset, _tenths(acs.timeout_period), acs.retries_allowed)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self.in_flight = False
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def alive(self) -> bool:
        """Connected, and the ILS has neither closed the connection nor sent anything unasked (LFs after a CR
        excepted). Cheap: no blocking I/O."""
        sock = self._sock
        if sock is None or self._buffer.strip(b"\n"):
            return False
        self._buffer.clear()
        try:
            while select.select([sock], [], [], 0)[0]:
                data = sock.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                if not data or data.strip(b"\n"):
                    return False
                sock.recv(len(data), socket.MSG_DONTWAIT)
            return True
        except BlockingIOError:
            return True
        except (OSError, ValueError):
            return False

    # --- requests -----------------------------------------------------------------------------------------

    def sc_status(self) -> ScStatusResponse:
        """99/98: the ACS is on-line, what it allows, its timeout and retries. Also the pool's keep-alive."""
        self.acs = self._request(ScStatusRequest(), ScStatusResponse)
        return self.acs

    def checkout(self, patron_id: str, item_id: str, *, no_block: bool = True,
                 transaction_ts: datetime | None = None, nb_due_date: datetime | None = None,
                 patron_password: str = "") -> CheckoutResponse:
        """11/12. ``no_block``: the book has already left (offline, or a blocked patron): the ILS must record it.
        ``transaction_ts``: when the loan happened; ILSs take the loan date as now and set their own due date
        (the answer's ``due_date``). ``nb_due_date``: the due date the bookcase gave (blank if None)."""
        return self._request(CheckoutRequest(
            renewal_policy=False, no_block=no_block, transaction_date=codec.sip_date(transaction_ts or _now()),
            nb_due_date=codec.sip_date(nb_due_date), institution=self.institution, patron_id=patron_id,
            item_id=item_id, terminal_password=self.terminal_password,
            patron_password=patron_password or None), CheckoutResponse)

    def checkin(self, item_id: str, *, return_ts: datetime | None = None, location: str = "",
                no_block: bool = True) -> CheckinResponse:
        """09/10, with the date the book really came back (ILSs honour it: no overdue fine for days in transit)."""
        return self._request(CheckinRequest(
            no_block=no_block, transaction_date=codec.sip_date(_now()),
            return_date=codec.sip_date(return_ts or _now()), location=location or self.location,
            institution=self.institution, item_id=item_id, terminal_password=self.terminal_password),
            CheckinResponse)

    def item_information(self, item_id: str) -> ItemInformationResponse:
        """17/18: the item's circulation status ("04" charged …), due date, and with the borrower extension
        (messages.BORROWER_FIELD) who has it."""
        return self._request(ItemInformationRequest(
            transaction_date=codec.sip_date(_now()), institution=self.institution, item_id=item_id,
            terminal_password=self.terminal_password or None), ItemInformationResponse)

    def patron_status(self, patron_id: str) -> PatronStatusResponse:
        """23/24: the 14 status flags, valid patron."""
        return self._request(PatronStatusRequest(
            language=LANGUAGE, transaction_date=codec.sip_date(_now()), institution=self.institution,
            patron_id=patron_id, terminal_password=self.terminal_password), PatronStatusResponse)

    def patron_information(self, patron_id: str, *, items: str | None = None, start: int | None = None,
                           end: int | None = None) -> PatronInformationResponse:
        """63/64: flags and counts (charged, overdue, holds …). ``items``: one of messages.SUMMARY_ITEMS
        ("charged" …) to have that list too, ``start``/``end`` its range (1-based)."""
        summary = [" "] * 10
        if items is not None:
            summary[SUMMARY_ITEMS.index(items)] = "Y"
        return self._request(PatronInformationRequest(
            language=LANGUAGE, transaction_date=codec.sip_date(_now()), summary="".join(summary),
            institution=self.institution, patron_id=patron_id, terminal_password=self.terminal_password or None,
            start_item=start, end_item=end), PatronInformationResponse)

    def end_session(self, patron_id: str) -> EndSessionResponse:
        """35/36."""
        return self._request(EndPatronSessionRequest(
            transaction_date=codec.sip_date(_now()), institution=self.institution, patron_id=patron_id,
            terminal_password=self.terminal_password or None), EndSessionResponse)

    # --- the exchange -------------------------------------------------------------------------------------

    def _request(self, message: Message, expect: type):
        if self._sock is None:
            raise Sip2Unavailable(f"not connected to {self.where}")
        if not self.alive():
            self.close()
            raise Sip2Unavailable(f"{self.where} closed the connection while it was idle")
        try:
            return self._exchange(message, expect)
        except Sip2Error:
            self.close()
            raise

    def _exchange(self, message: Message, expect: type):
        with self._lock:
            seq, self._seq = self._seq, (self._seq + 1) % 10
            out = codec.encode(message, seq=seq, charset=self.charset, error_detection=self.error_detection)
            budget = self.resends
            if self.acs is not None and self.acs.retries_allowed is not None and self.acs.retries_allowed < UNKNOWN:
                budget = min(budget, self.acs.retries_allowed)
            self.in_flight = True
            self._send(out)
            for attempt in range(budget + 1):
                try:
                    frame = codec.decode_frame(self._read_line(), self.charset, max_line=self.max_line)
                    answer = frame.message
                    if isinstance(answer, RequestScResend):
                        problem: Exception | None = None        # the ILS could not read ours: send it again
                    elif not isinstance(answer, expect):
                        raise Sip2FormatError(f"a {type(answer).__name__} ({answer.command}) came where a "
                                              f"{expect.__name__} ({expect.command}) belongs")
                    elif self.error_detection and frame.seq is not None and frame.seq != seq:
                        raise Sip2FormatError(f"the answer carries sequence number {frame.seq}, the request {seq}")
                    else:
                        self.in_flight = False
                        self.last_used = time.monotonic()
                        return answer
                except Sip2FormatError as exc:
                    problem = exc
                if attempt == budget:
                    what = f"no readable answer ({problem})" if problem else "it kept asking for our request (96)"
                    raise Sip2Lost(f"{self.where}: {what} after {budget} resend(s)")
                if problem is None:
                    LOGGER.info("SIP2: %s asks for our %s again (96); sending it again (%d of %d)", self.where,
                                type(message).__name__, attempt + 1, budget)
                    self._send(out)
                else:
                    LOGGER.warning("SIP2: %s: %s; asking for the answer again (97, %d of %d)", self.where, problem,
                                   attempt + 1, budget)
                    self._send(codec.encode(RequestAcsResend(), charset=self.charset,
                                            error_detection=self.error_detection))
            raise AssertionError("unreachable")

    def _wait_s(self) -> float:
        tenths = self.acs.timeout_period if self.acs is not None else None
        if tenths and tenths < UNKNOWN:
            return max(self.timeout_s, tenths / 10)
        return self.timeout_s

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise Sip2Lost(f"the connection to {self.where} was closed")
        if LOGGER.isEnabledFor(logging.DEBUG):
            LOGGER.debug("SIP2 -> %s", codec.redact(data, self.charset))
        try:
            sock.settimeout(self._wait_s())
            sock.sendall(data)
        except OSError as exc:
            raise Sip2Lost(f"the connection to {self.where} broke while sending: {exc.strerror or exc}") from None

    def _read_line(self) -> bytes:
        """The next CR-terminated message, within the wait (Sip2Lost if none, or if the stream is not SIP2)."""
        sock = self._sock
        assert sock is not None
        limit = self._wait_s()
        deadline = time.monotonic() + limit
        while True:
            try:
                consumed, line = codec.next_line(self._buffer, self.max_line)
            except Sip2FormatError as exc:
                raise Sip2Lost(f"{self.where} sent {exc}: not SIP2") from None
            if line is not None:
                del self._buffer[:consumed]
                if LOGGER.isEnabledFor(logging.DEBUG):
                    LOGGER.debug("SIP2 <- %s", codec.redact(line, self.charset))
                return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise Sip2Lost(f"no answer from {self.where} within {limit:g} s")
            try:
                sock.settimeout(left)
                chunk = sock.recv(65536)
            except TimeoutError:
                raise Sip2Lost(f"no answer from {self.where} within {limit:g} s") from None
            except OSError as exc:
                raise Sip2Lost(f"the connection to {self.where} broke: {exc.strerror or exc}") from None
            if not chunk:
                raise Sip2Lost(f"{self.where} closed the connection before answering")
            self._buffer += chunk


def _now() -> datetime:
    return datetime.now().astimezone()


def _tenths(value: int | None) -> str:
    return "not given" if not value or value >= UNKNOWN else f"{value / 10:g} s"
