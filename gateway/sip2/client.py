"""One SIP2 connection to the ILS: logged in (93/94), one request at a time, resends, timeouts, typed answers.

SIP2's rules kept here:
- one request at a time on a connection, each with the next sequence number (AY 0-9) when error detection
  (AY/AZ) is on; the answer must carry the same number;
- a garbled answer (bad checksum, not SIP2, the wrong sequence number) is asked for again with 97, at most
  ``resends`` times (or the ACS status's "retries allowed", if smaller); the ACS may ask us for ours with 96;
- after login, SC status (99) learns the ACS's timeout period (tenths of a second) and retries allowed.

Errors, the gateway's exactly-once rule rests on them: ``Sip2Unavailable`` — no connection or login, so the
request was NOT sent; ``Sip2Lost`` — the request was (or may have been) sent and no valid answer came (a drop, a
timeout, garbage after every resend): its outcome is unknown, ask the ILS before sending it again. Either way
the connection is closed: the next request reconnects.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.sip2 import codec
from gateway.sip2.codec import Sip2ChecksumError, Sip2FormatError

LOGGER = logging.getLogger(__name__)

PROTOCOL = "2.00"
LANGUAGE = "019"             # SIP2's "Chinese" (the ILS answers in its own language all the same)


class Sip2Error(Exception):
    """Base of the SIP2 errors; the text says what happened, in words for the library's IT staff."""


class Sip2Unavailable(Sip2Error):
    """The ILS cannot be reached or refused the login: the request was not sent."""


class Sip2Lost(Sip2Error):
    """The request may have reached the ILS, but no valid answer came: its outcome is unknown."""


# --- answers, in the gateway's terms --------------------------------------------------------------------------

def _flag(value: str | None) -> bool:
    return value in ("Y", "1")


def _count(value: str | None) -> int:
    return int(value) if value and value.strip().isdigit() else 0


@dataclass(frozen=True)
class CheckoutAnswer:
    ok: bool
    screen_message: str
    item_id: str
    patron_id: str
    due_date: str                  # as the ILS wrote it (AH)
    title: str
    renewal_ok: bool


@dataclass(frozen=True)
class CheckinAnswer:
    ok: bool
    screen_message: str
    item_id: str
    alert: bool
    alert_type: str                # CV, when the ILS says why
    permanent_location: str
    patron_id: str | None          # AA: who had it, when the ILS says


@dataclass(frozen=True)
class ItemAnswer:
    circulation_status: str        # 01 other, 02 on order, 03 available, 04 charged, … 12 lost, 13 missing
    item_id: str
    title: str
    due_date: str | None
    patron_id: str | None          # the borrower, from our extension field (docs/sip2.md); None if not sent
    screen_message: str
    ok: bool = True


@dataclass(frozen=True)
class PatronAnswer:
    patron_status: str             # 14 Y/space flags: charge privileges denied, renewal denied, …
    patron_id: str
    valid_patron: bool | None
    charged_items_count: int
    overdue_items_count: int
    hold_items_count: int
    fee_amount: str | None
    screen_message: str
    ok: bool = True


@dataclass(frozen=True)
class StatusAnswer:
    online: bool
    checkin_ok: bool
    checkout_ok: bool
    timeout_s: float | None        # the ACS's timeout period; None: it sets none
    retries: int
    ok: bool = True


def _text(messages: tuple[str, ...]) -> str:
    return " ".join(m.strip() for m in messages if m.strip())


# --- the connection ----------------------------------------------------------------------------------------------

class Sip2Client:
    """A SIP2 connection: ``connect()`` (or the first request) logs in; ``close()`` ends it."""

    def __init__(self, host: str, port: int, *, user: str, password: str, location: str = "",
                 institution: str = "", charset: str = "utf-8", timeout_s: float = 10.0,
                 connect_timeout_s: float = 10.0, resends: int = 3, error_detection: bool = True,
                 terminal_password: str = "") -> None:
        self.host, self.port = host, port
        self.user, self.password, self.location, self.institution = user, password, location, institution
        self.charset = charset
        self.timeout_s, self.connect_timeout_s = timeout_s, connect_timeout_s
        self.resends = resends
        self.error_detection = error_detection
        self.terminal_password = terminal_password
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._seq = 0
        self.acs: StatusAnswer | None = None
        self.last_used = 0.0

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def __repr__(self) -> str:
        return f"Sip2Client({self.host}:{self.port}, {'connected' if self.connected else 'closed'})"

    # --- lifecycle ----------------------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect, log in and read the ACS's status. Sip2Unavailable if any of it fails (nothing else sent)."""
        if self._sock is not None:
            return
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            self._sock = None
            raise Sip2Unavailable(f"cannot connect to the ILS at {self.host}:{self.port}: "
                                  f"{exc.strerror or exc}") from None
        self._buffer, self._seq = b"", 0
        try:
            login = self._exchange(codec.LoginRequest(uid_algorithm="0", pwd_algorithm="0", login_user_id=self.user,
                                                      login_password=self.password,
                                                      location_code=self.location or None), codec.LoginResponse)
            if login.ok != "1":
                raise Sip2Unavailable(f"the ILS at {self.host}:{self.port} refused the SIP2 login of user "
                                      f"{self.user!r} (check the account and its password file)")
            self.acs = self.sc_status()
        except Sip2Lost as exc:
            self.close()
            raise Sip2Unavailable(f"logging in to the ILS at {self.host}:{self.port}: {exc}") from None
        except Sip2Unavailable:
            self.close()
            raise
        LOGGER.info("SIP2: logged in to %s:%d as %s (%s, ACS %s)", self.host, self.port, self.user, self.charset,
                    "online" if self.acs.online else "OFFLINE")

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # --- transactions ------------------------------------------------------------------------------------

    def sc_status(self) -> StatusAnswer:
        """99/98: the ACS is online, what it allows, its timeout and retries (also the keep-alive)."""
        r = self._request(codec.SCStatusRequest(status_code="0", max_print_width="000", protocol_version=PROTOCOL),
                          codec.ACSStatusResponse)
        tenths = int(r.timeout_period) if r.timeout_period.isdigit() else 0
        answer = StatusAnswer(online=_flag(r.online_status), checkin_ok=_flag(r.checkin_ok),
                              checkout_ok=_flag(r.checkout_ok), timeout_s=tenths / 10 if tenths else None,
                              retries=int(r.retries_allowed) if r.retries_allowed.isdigit() else 999)
        self.acs = answer
        return answer

    def checkout(self, patron_id: str, item_id: str, *, no_block: bool = True, transaction_ts: datetime | None = None,
                 nb_due_date: datetime | None = None, patron_password: str = "") -> CheckoutAnswer:
        """11/12. ``no_block``: the book is already gone (offline or blocked patron): the ILS records it anyway.
        ``nb_due_date``: the due date the bookcase gave the patron (SIP2's no-block due date; default 30 days on)."""
        at = transaction_ts or datetime.now().astimezone()
        r = self._request(codec.CheckoutRequest(
            sc_renewal_policy="N", no_block="Y" if no_block else "N", transaction_date=codec.sip_date(at),
            nb_due_date=codec.sip_date(nb_due_date or at + timedelta(days=30)),
            institution_id=self.institution, patron_identifier=patron_id, item_identifier=item_id,
            terminal_password=self.terminal_password, patron_password=patron_password or None),
            codec.CheckoutResponse)
        return CheckoutAnswer(ok=r.ok == "1", screen_message=_text(r.screen_message), item_id=r.item_identifier,
                              patron_id=r.patron_identifier, due_date=r.due_date, title=r.title_identifier,
                              renewal_ok=_flag(r.renewal_ok))

    def checkin(self, item_id: str, *, return_ts: datetime | None = None, location: str = "",
                no_block: bool = True) -> CheckinAnswer:
        """09/10, with the date the book really came back."""
        at = return_ts or datetime.now().astimezone()
        r, frame = self._request(codec.CheckinRequest(
            no_block="Y" if no_block else "N", transaction_date=codec.sip_date(datetime.now().astimezone()),
            return_date=codec.sip_date(at), current_location=location or self.location,
            institution_id=self.institution, item_identifier=item_id, terminal_password=self.terminal_password),
            codec.CheckinResponse, frame=True)
        return CheckinAnswer(ok=r.ok == "1", screen_message=_text(r.screen_message), item_id=r.item_identifier,
                             alert=_flag(r.alert), alert_type=codec.extension(frame, "CV", self.charset) or "",
                             permanent_location=r.permanent_location, patron_id=r.patron_identifier)

    def item_information(self, item_id: str) -> ItemAnswer:
        """17/18: the item's circulation status (and, with our extension, its borrower)."""
        r, frame = self._request(codec.ItemInformationRequest(
            transaction_date=codec.sip_date(datetime.now().astimezone()), institution_id=self.institution,
            item_identifier=item_id, terminal_password=self.terminal_password), codec.ItemInformationResponse,
            frame=True)
        return ItemAnswer(circulation_status=r.circulation_status, item_id=r.item_identifier,
                          title=r.title_identifier, due_date=r.due_date,
                          patron_id=codec.extension(frame, codec.BORROWER, self.charset) or None,
                          screen_message=_text(r.screen_message))

    def patron_status(self, patron_id: str) -> PatronAnswer:
        """23/24."""
        r = self._request(codec.PatronStatusRequest(
            language=LANGUAGE, transaction_date=codec.sip_date(datetime.now().astimezone()),
            institution_id=self.institution, patron_identifier=patron_id, terminal_password=self.terminal_password,
            patron_password=""), codec.PatronStatusResponse)
        return PatronAnswer(patron_status=r.patron_status, patron_id=r.patron_identifier,
                            valid_patron=None if r.valid_patron is None else _flag(r.valid_patron),
                            charged_items_count=0, overdue_items_count=0, hold_items_count=0,
                            fee_amount=r.fee_amount, screen_message=_text(r.screen_message))

    def patron_information(self, patron_id: str) -> PatronAnswer:
        """63/64: status flags and the counts (charged, overdue, holds) the bookcases' limits need."""
        r = self._request(codec.PatronInformationRequest(
            language=LANGUAGE, transaction_date=codec.sip_date(datetime.now().astimezone()), summary=" " * 10,
            institution_id=self.institution, patron_identifier=patron_id,
            terminal_password=self.terminal_password or None), codec.PatronInformationResponse)
        return PatronAnswer(patron_status=r.patron_status, patron_id=r.patron_identifier,
                            valid_patron=None if r.valid_patron is None else _flag(r.valid_patron),
                            charged_items_count=_count(r.charged_items_count),
                            overdue_items_count=_count(r.overdue_items_count),
                            hold_items_count=_count(r.hold_items_count), fee_amount=r.fee_amount,
                            screen_message=_text(r.screen_message))

    def end_session(self, patron_id: str) -> bool:
        """35/36; True if the ACS ended it."""
        r = self._request(codec.EndPatronSessionRequest(
            transaction_date=codec.sip_date(datetime.now().astimezone()), institution_id=self.institution,
            patron_identifier=patron_id, terminal_password=self.terminal_password or None), codec.EndSessionResponse)
        return _flag(r.end_session)

    # --- the exchange --------------------------------------------------------------------------------------

    def _request(self, message, expect, frame: bool = False):
        """Send ``message`` on a logged-in connection; its answer (and the answer's raw frame with ``frame``)."""
        self.connect()
        try:
            return self._exchange(message, expect, frame)
        except Sip2Error:
            self.close()
            raise

    def _exchange(self, message, expect, frame: bool = False):
        seq = self._seq
        self._seq = (self._seq + 1) % 10
        out = codec.encode(message, seq=seq, charset=self.charset, error_detection=self.error_detection)
        self._send(out)
        retries = min(self.resends, self.acs.retries) if self.acs else self.resends
        for attempt in range(retries + 1):
            line = self._read_line()
            try:
                decoded = codec.decode(line, self.charset)
                if isinstance(decoded.message, codec.RequestSCResend):
                    raise Sip2ChecksumError("the ILS asks for our message again (96)")
                if self.error_detection and decoded.sequence is not None and decoded.sequence != seq:
                    raise Sip2FormatError(f"the answer carries sequence number {decoded.sequence}, ours was {seq}")
                if not isinstance(decoded.message, expect):
                    raise Sip2FormatError(f"a {type(decoded.message).__name__} where a {expect.__name__} belongs")
            except Sip2FormatError as exc:
                if attempt == retries:
                    raise Sip2Lost(f"no readable answer from the ILS after {retries} resend(s): {exc}") from None
                LOGGER.warning("SIP2: %s; asking again (%d of %d)", exc, attempt + 1, retries)
                if isinstance(exc, Sip2ChecksumError) and "96" in str(exc):
                    self._send(out)                                   # the ACS asked for ours: send it again
                else:
                    self._send(codec.encode(codec.RequestACSResend(), seq=None, charset=self.charset,
                                            error_detection=self.error_detection))
                continue
            self.last_used = time.monotonic()
            return (decoded.message, line) if frame else decoded.message
        raise AssertionError("unreachable")

    def _send(self, data: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise Sip2Lost(f"the connection to the ILS broke while sending: {exc.strerror or exc}") from None

    def _read_line(self) -> bytes:
        """One CR-terminated line, within the timeout (the ACS's, if it set a shorter one)."""
        assert self._sock is not None
        limit = self.timeout_s
        if self.acs is not None and self.acs.timeout_s:
            limit = min(limit, max(self.acs.timeout_s, 1.0))
        deadline = time.monotonic() + limit
        while b"\r" not in self._buffer:
            if len(self._buffer) > codec.MAX_FRAME:
                raise Sip2Lost(f"the ILS sent over {codec.MAX_FRAME} bytes without ending a message: not SIP2")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Sip2Lost(f"no answer from the ILS within {limit:g} s")
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                raise Sip2Lost(f"no answer from the ILS within {limit:g} s") from None
            except OSError as exc:
                raise Sip2Lost(f"the connection to the ILS broke: {exc.strerror or exc}") from None
            if not chunk:
                raise Sip2Lost("the ILS closed the connection before answering")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\r")
        line = line.lstrip(b"\n")               # some servers end lines with CR LF
        return line + b"\r"
