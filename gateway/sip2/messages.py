"""SIP2 messages as typed, frozen dataclasses: the layout of each (3M SIP 2.00) is declared by its fields.

A message is its two-digit command, then its **fixed-length fields** in spec order, then its **variable
fields**, each a two-letter identifier, the value and ``|``, in spec order (a receiver must accept any order).
``fixed(width, kind)`` and ``var("AB")`` declare them; codec.py reads the declarations and never hard-codes a
layout. Kinds of fixed field:

    ok      "0"/"1"            -> bool
    flag    "Y"/"N"            -> bool (a blank reads as None)
    ynu     "Y"/"N"/"U"        -> bool, None for U (unknown)
    date    YYYYMMDDZZZZHHMMSS -> str as sent (18 blanks: no date); codec.sip_date/parse_sip_date convert
    int     digits             -> int, None if blank (" 40" reads as 40: the 3M guide's own example has it)
    digits  digits             -> str (circulation status "04", language "001")
    flags   "Y" or blank each  -> str (patron status, 14 flags; summary, 10)
    text    printable ASCII    -> str (protocol version "2.00")

Variable fields decode as text; ``id`` fields (patron, item, institution) must decode exactly in the charset,
free text (titles, screen messages) is decoded leniently. Unknown identifiers are kept in ``extra``.

The ILS's borrower of an item is not in SIP2 2.00. The simulated ILS sends it in item information (18) as
the extension field ``ZB`` (BORROWER_FIELD), the patron identifier as in AA; a real ILS may be configured to
do the same (docs/sip2.md), else ``patron_id`` stays None. Checkin's ``CV`` (alert type) is the 3M
extension that Koha and Evergreen send.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

BORROWER_FIELD = "ZB"
BLANK_DATE = " " * 18
PROTOCOL_VERSION = "2.00"
NO_FLAGS = " " * 14

# 18 item information: circulation status codes
CIRCULATION_STATUS = {
    "01": "other", "02": "on order", "03": "available", "04": "charged",
    "05": "charged; not to be recalled until earliest recall date", "06": "in process", "07": "recalled",
    "08": "waiting on hold shelf", "09": "waiting to be re-shelved", "10": "in transit between library locations",
    "11": "claimed returned", "12": "lost", "13": "missing",
}
# 24/64 patron status: the meaning of each of the 14 positions ("Y" = true)
PATRON_STATUS_FLAGS = (
    "charge privileges denied", "renewal privileges denied", "recall privileges denied",
    "hold privileges denied", "card reported lost", "too many items charged", "too many items overdue",
    "too many renewals", "too many claims of items returned", "too many items lost",
    "excessive outstanding fines", "excessive outstanding fees", "recall overdue", "too many items billed",
)
# 63 summary: position -> the item list it asks for, and the field that lists them in 64
SUMMARY_ITEMS = ("hold", "overdue", "charged", "fine", "recall", "unavailable")


@dataclass(frozen=True)
class Fixed:
    width: int
    kind: str


@dataclass(frozen=True)
class Var:
    code: str
    kind: str = "text"          # text (lenient), id (exact), flag (Y/N -> bool), int
    repeat: bool = False
    pad: int = 0                # int: written with this many digits ("BZ0002" is 4-char in the spec)


def fixed(width: int, kind: str, default: Any = MISSING) -> Any:
    return field(default=default, metadata={"sip": Fixed(width, kind)})


def var(code: str, default: Any = None, *, kind: str = "text", repeat: bool = False, pad: int = 0) -> Any:
    return field(default=() if repeat else default, metadata={"sip": Var(code, kind, repeat, pad)})


@dataclass(frozen=True)
class Layout:
    command: str
    cls: type
    fixed: tuple[tuple[str, Fixed], ...]
    var: tuple[tuple[str, Var], ...]

    @property
    def fixed_width(self) -> int:
        return sum(f.width for _, f in self.fixed)

    def by_code(self) -> dict[str, tuple[str, Var]]:
        return {v.code: (name, v) for name, v in self.var}


LAYOUTS: dict[str, Layout] = {}


def message(command: str):
    """Class decorator: a frozen keyword-only dataclass registered as SIP2 ``command``."""
    def wrap(cls):
        cls = dataclass(frozen=True, kw_only=True)(cls)
        cls.command = command
        fx, vr = [], []
        for f in fields(cls):
            spec = f.metadata.get("sip")
            if isinstance(spec, Fixed):
                fx.append((f.name, spec))
            elif isinstance(spec, Var):
                vr.append((f.name, spec))
        LAYOUTS[command] = Layout(command, cls, tuple(fx), tuple(vr))
        return cls
    return wrap


@dataclass(frozen=True, kw_only=True)
class Message:
    """Base of every message. ``extra``: variable fields this layout does not know, (code, value) in order."""
    command: ClassVar[str]
    extra: tuple[tuple[str, str], ...] = ()

    def extra_field(self, code: str) -> str | None:
        for c, value in self.extra:
            if c == code:
                return value
        return None


@dataclass(frozen=True, kw_only=True)
class Response(Message):
    """Base of the ILS's answers: the screen message lines (AF) joined, as the contract's ``screen_message``."""

    @property
    def screen_message(self) -> str:
        return " ".join(m.strip() for m in getattr(self, "screen_messages", ()) if m.strip())


# ------------------------------------------------------------------ requests (SC -> ACS)

@message("93")
class LoginRequest(Message):
    uid_algorithm: str = fixed(1, "text", "0")       # 0: not encrypted
    pwd_algorithm: str = fixed(1, "text", "0")
    user: str = var("CN", "", kind="id")
    password: str = var("CO", "", kind="id")
    location: str | None = var("CP", kind="id")


@message("99")
class ScStatusRequest(Message):
    status_code: str = fixed(1, "digits", "0")       # 0 SC ok, 1 printer out of paper, 2 about to shut down
    max_print_width: int = fixed(3, "int", 0)
    protocol_version: str = fixed(4, "text", PROTOCOL_VERSION)


@message("11")
class CheckoutRequest(Message):
    renewal_policy: bool = fixed(1, "flag", False)   # Y: the SC may renew (we never do)
    no_block: bool = fixed(1, "flag", False)         # Y: done offline, the ACS must not refuse it
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    nb_due_date: str = fixed(18, "date", BLANK_DATE)  # blanks: the ACS sets the due date
    institution: str = var("AO", "", kind="id")
    patron_id: str = var("AA", "", kind="id")
    item_id: str = var("AB", "", kind="id")
    terminal_password: str = var("AC", "", kind="id")
    item_properties: str | None = var("CH")
    patron_password: str | None = var("AD", kind="id")
    fee_acknowledged: bool | None = var("BO", kind="flag")
    cancel: bool | None = var("BI", kind="flag")


@message("09")
class CheckinRequest(Message):
    no_block: bool = fixed(1, "flag", False)
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    return_date: str = fixed(18, "date", BLANK_DATE)
    location: str = var("AP", "", kind="id")          # current location
    institution: str = var("AO", "", kind="id")
    item_id: str = var("AB", "", kind="id")
    terminal_password: str = var("AC", "", kind="id")
    item_properties: str | None = var("CH")
    cancel: bool | None = var("BI", kind="flag")


@message("17")
class ItemInformationRequest(Message):
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    institution: str = var("AO", "", kind="id")
    item_id: str = var("AB", "", kind="id")
    terminal_password: str | None = var("AC", kind="id")


@message("23")
class PatronStatusRequest(Message):
    language: str = fixed(3, "digits", "000")
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    institution: str = var("AO", "", kind="id")
    patron_id: str = var("AA", "", kind="id")
    terminal_password: str = var("AC", "", kind="id")
    patron_password: str = var("AD", "", kind="id")


@message("63")
class PatronInformationRequest(Message):
    language: str = fixed(3, "digits", "000")
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    summary: str = fixed(10, "flags", " " * 10)      # at most one Y: the item list wanted (SUMMARY_ITEMS)
    institution: str = var("AO", "", kind="id")
    patron_id: str = var("AA", "", kind="id")
    terminal_password: str | None = var("AC", kind="id")
    patron_password: str | None = var("AD", kind="id")
    start_item: int | None = var("BP", kind="int", pad=5)
    end_item: int | None = var("BQ", kind="int", pad=5)


@message("35")
class EndPatronSessionRequest(Message):
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    institution: str = var("AO", "", kind="id")
    patron_id: str = var("AA", "", kind="id")
    terminal_password: str | None = var("AC", kind="id")
    patron_password: str | None = var("AD", kind="id")


@message("97")
class RequestAcsResend(Message):
    """The SC asks the ACS to send its last message again (it arrived garbled)."""


# ------------------------------------------------------------------ responses (ACS -> SC)

@message("94")
class LoginResponse(Response):
    ok: bool = fixed(1, "ok", False)


@message("98")
class ScStatusResponse(Response):
    """ACS status: the ILS's rules for this connection (answers 99)."""
    online: bool | None = fixed(1, "flag", True)
    checkin_ok: bool | None = fixed(1, "flag", True)
    checkout_ok: bool | None = fixed(1, "flag", True)
    renewal_policy: bool | None = fixed(1, "flag", False)
    status_update_ok: bool | None = fixed(1, "flag", False)
    offline_ok: bool | None = fixed(1, "flag", False)
    timeout_period: int | None = fixed(3, "int", 999)    # tenths of a second; 000 off-line, 999 unknown
    retries_allowed: int | None = fixed(3, "int", 999)   # 999 unknown
    date_time_sync: str = fixed(18, "date", BLANK_DATE)
    protocol_version: str = fixed(4, "text", PROTOCOL_VERSION)
    institution: str = var("AO", "", kind="id")
    library_name: str | None = var("AM")
    supported_messages: str = var("BX", "")
    terminal_location: str | None = var("AN")
    screen_messages: tuple[str, ...] = var("AF", repeat=True)
    print_lines: tuple[str, ...] = var("AG", repeat=True)

    @property
    def ok(self) -> bool:
        return self.online is not False


@message("12")
class CheckoutResponse(Response):
    ok: bool = fixed(1, "ok", False)
    renewal_ok: bool | None = fixed(1, "flag", False)
    magnetic_media: bool | None = fixed(1, "ynu", None)
    desensitize: bool | None = fixed(1, "ynu", None)
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    institution: str = var("AO", "", kind="id")
    patron_id: str = var("AA", "", kind="id")
    item_id: str = var("AB", "", kind="id")
    title: str = var("AJ", "")
    due_date: str = var("AH", "")                     # as the ILS sends it (SIP2 date, or its own format)
    fee_type: str | None = var("BT")
    security_inhibit: bool | None = var("CI", kind="flag")
    currency_type: str | None = var("BH")
    fee_amount: str | None = var("BV")
    media_type: str | None = var("CK")
    item_properties: str | None = var("CH")
    transaction_id: str | None = var("BK")
    screen_messages: tuple[str, ...] = var("AF", repeat=True)
    print_lines: tuple[str, ...] = var("AG", repeat=True)


@message("10")
class CheckinResponse(Response):
    ok: bool = fixed(1, "ok", False)
    resensitize: bool | None = fixed(1, "flag", False)
    magnetic_media: bool | None = fixed(1, "ynu", None)
    alert: bool | None = fixed(1, "flag", False)
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    institution: str = var("AO", "", kind="id")
    item_id: str = var("AB", "", kind="id")
    permanent_location: str = var("AQ", "")
    title: str | None = var("AJ")
    patron_id: str | None = var("AA", kind="id")
    media_type: str | None = var("CK")
    item_properties: str | None = var("CH")
    sort_bin: str | None = var("CL")
    alert_type: str | None = var("CV")               # 3M extension: 01 hold here, 02 hold elsewhere, 04 transfer ...
    screen_messages: tuple[str, ...] = var("AF", repeat=True)
    print_lines: tuple[str, ...] = var("AG", repeat=True)


@message("18")
class ItemInformationResponse(Response):
    circulation_status: str = fixed(2, "digits", "01")   # CIRCULATION_STATUS
    security_marker: str = fixed(2, "digits", "00")
    fee_type: str = fixed(2, "digits", "01")
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    hold_queue_length: str | None = var("CF")
    due_date: str | None = var("AH")
    recall_date: str | None = var("CJ")
    hold_pickup_date: str | None = var("CM")
    item_id: str = var("AB", "", kind="id")
    title: str = var("AJ", "")
    owner: str | None = var("BG")
    currency_type: str | None = var("BH")
    fee_amount: str | None = var("BV")
    media_type: str | None = var("CK")
    permanent_location: str | None = var("AQ")
    current_location: str | None = var("AP")
    item_properties: str | None = var("CH")
    patron_id: str | None = var(BORROWER_FIELD, kind="id")   # extension: who has it (module docstring)
    screen_messages: tuple[str, ...] = var("AF", repeat=True)
    print_lines: tuple[str, ...] = var("AG", repeat=True)

    @property
    def ok(self) -> bool:
        """The item is known to the ILS (SIP2 has no ok flag here; an unknown item reads as status 01
        with no title)."""
        return bool(self.title) or self.circulation_status != "01"


class _PatronFlags:
    patron_status: str

    def flag(self, index: int) -> bool:
        """Position ``index`` (0-13, PATRON_STATUS_FLAGS) of the patron status is Y."""
        return index < len(self.patron_status) and self.patron_status[index] == "Y"


@message("24")
class PatronStatusResponse(Response, _PatronFlags):
    patron_status: str = fixed(14, "flags", NO_FLAGS)
    language: str = fixed(3, "digits", "000")
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    institution: str = var("AO", "", kind="id")
    patron_id: str = var("AA", "", kind="id")
    personal_name: str = var("AE", "")
    valid_patron: bool | None = var("BL", kind="flag")
    valid_patron_password: bool | None = var("CQ", kind="flag")
    currency_type: str | None = var("BH")
    fee_amount: str | None = var("BV")
    screen_messages: tuple[str, ...] = var("AF", repeat=True)
    print_lines: tuple[str, ...] = var("AG", repeat=True)

    @property
    def ok(self) -> bool:
        return self.valid_patron is not False


@message("64")
class PatronInformationResponse(Response, _PatronFlags):
    patron_status: str = fixed(14, "flags", NO_FLAGS)
    language: str = fixed(3, "digits", "000")
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    hold_items_count: int | None = fixed(4, "int", 0)
    overdue_items_count: int | None = fixed(4, "int", 0)
    charged_items_count: int | None = fixed(4, "int", 0)
    fine_items_count: int | None = fixed(4, "int", 0)
    recall_items_count: int | None = fixed(4, "int", 0)
    unavailable_holds_count: int | None = fixed(4, "int", 0)
    institution: str = var("AO", "", kind="id")
    patron_id: str = var("AA", "", kind="id")
    personal_name: str = var("AE", "")
    hold_items_limit: int | None = var("BZ", kind="int", pad=4)
    overdue_items_limit: int | None = var("CA", kind="int", pad=4)
    charged_items_limit: int | None = var("CB", kind="int", pad=4)
    valid_patron: bool | None = var("BL", kind="flag")
    valid_patron_password: bool | None = var("CQ", kind="flag")
    currency_type: str | None = var("BH")
    fee_amount: str | None = var("BV")
    fee_limit: str | None = var("CC")
    hold_items: tuple[str, ...] = var("AS", repeat=True)
    overdue_items: tuple[str, ...] = var("AT", repeat=True)
    charged_items: tuple[str, ...] = var("AU", repeat=True)
    fine_items: tuple[str, ...] = var("AV", repeat=True)
    recall_items: tuple[str, ...] = var("BU", repeat=True)
    unavailable_hold_items: tuple[str, ...] = var("CD", repeat=True)
    home_address: str | None = var("BD")
    email_address: str | None = var("BE")
    home_phone_number: str | None = var("BF")
    screen_messages: tuple[str, ...] = var("AF", repeat=True)
    print_lines: tuple[str, ...] = var("AG", repeat=True)

    @property
    def ok(self) -> bool:
        return self.valid_patron is not False


@message("36")
class EndSessionResponse(Response):
    end_session: bool | None = fixed(1, "flag", True)
    transaction_date: str = fixed(18, "date", BLANK_DATE)
    institution: str = var("AO", "", kind="id")
    patron_id: str = var("AA", "", kind="id")
    screen_messages: tuple[str, ...] = var("AF", repeat=True)
    print_lines: tuple[str, ...] = var("AG", repeat=True)

    @property
    def ok(self) -> bool:
        return self.end_session is not False


@message("96")
class RequestScResend(Response):
    """The ACS asks the SC to send its last message again (it arrived garbled)."""

    ok: ClassVar[bool] = False


REQUESTS = (LoginRequest, ScStatusRequest, CheckoutRequest, CheckinRequest, ItemInformationRequest,
            PatronStatusRequest, PatronInformationRequest, EndPatronSessionRequest, RequestAcsResend)
RESPONSES = (LoginResponse, ScStatusResponse, CheckoutResponse, CheckinResponse, ItemInformationResponse,
             PatronStatusResponse, PatronInformationResponse, EndSessionResponse, RequestScResend)
# request command -> the answer's class (97 has none of its own: the ACS sends its last message again)
ANSWERS: dict[str, type] = {req.command: resp for req, resp in zip(REQUESTS[:-1], RESPONSES[:-1])}
NAMES = {cls.command: cls.__name__ for cls in REQUESTS + RESPONSES}
