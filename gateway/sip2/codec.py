"""SIP2 wire format: messages <-> bytes, AY/AZ error detection, CR framing, SIP2 dates. No I/O, no clocks.

    <command 2 digits><fixed fields><ID value|>...[AY<seq>AZ<checksum>]<CR>

    9300CNcitybook|COsecret|CPMH-BOOKCASES|AY0AZF1A3<CR>

- **Checksum** (3M SIP 2.00, "error detection"): the 16-bit two's complement of the sum of every byte from the
  first byte of the message through the "AZ" identifier, as 4 upper-case hex digits; adding it to that sum
  gives 0 modulo 0x10000. Bytes, not characters: in GB18030 or UTF-8 a Chinese title adds its encoded bytes.
- **Sequence number** AY: one digit 0-9, echoed by the ACS in its answer. Resend requests (96/97) carry
  only "AZ" and a checksum ("97AZFEF5").
- Text is encoded in the ILS's charset (UTF-8 by default, GB18030 for ILSs that speak it). A GB18030 character
  may contain the byte of "|" (東 is 0x96 0x7C), so variable fields are split after decoding, never on bytes.
- A receiver accepts a LF after the CR (CRLF senders), a last field without its "|", fields in any order and
  unknown fields (kept in ``message.extra``); it refuses, with a Sip2FormatError saying what is wrong, an
  unknown command, fixed fields that are truncated or out of range, a bad checksum (Sip2ChecksumError), NUL
  bytes, and any message or line longer than MAX_LINE_BYTES.

Why not PyPI ``pysip2`` (0.1.0, MIT, evaluated for issue 12): its checksum, field layouts and GB18030 encoding
are right, but its decoder rejects three of the 3M Developer's Guide's own published examples (``990 402.00``:
a blank-padded print width; a 09 checkin and an 11 checkout with blank return / no-block due dates, which are
how a client says "no date"), so it can neither read nor write the checkout we send; its strict models refuse
answers real ILSs give (a refused 12 without AJ/AH, patron status flags "N"); invalid UTF-8 or GB18030 bytes
escape as UnicodeDecodeError instead of its own error; it drops unknown fields (the 3M CV alert type, our
borrower extension); and it brings msgspec and anyio for an async server we do not need, no client or pool.
This codec is ~300 lines over the declarative layouts in messages.py, with no dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from gateway.sip2.errors import Sip2ChecksumError, Sip2FormatError
from gateway.sip2.messages import BLANK_DATE, LAYOUTS, NAMES, Fixed, Message, Var

MAX_LINE_BYTES = 64 * 1024       # a longer line is refused (the spec caps a variable field at 255 characters)
MAX_FIELD_BYTES = 255            # what we send in one variable field
CR = b"\r"
_TRAILER = re.compile(rb"AZ([0-9A-Fa-f]{4})\Z")
_SEQ = re.compile(rb"AY([0-9])\Z")
_CODE = re.compile(r"[A-Za-z0-9]{2}")
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})([ -~]{4})(\d{2})(\d{2})(\d{2})")
_RESEND = ("96", "97")           # no sequence number on these


@dataclass(frozen=True)
class Frame:
    """A decoded message and its error-detection trailer: ``seq`` (AY) and whether it had a checksum (AZ)."""
    message: Message
    seq: int | None
    checksummed: bool


# ------------------------------------------------------------------ checksum and dates

def checksum(data: bytes) -> str:
    """The AZ value for ``data`` (every byte through "AZ"): two's complement of the 16-bit byte sum, 4 hex."""
    return f"{-sum(data) & 0xFFFF:04X}"


def sip_date(when: datetime | None = None, *, utc: bool = False) -> str:
    """A SIP2 date "YYYYMMDDZZZZHHMMSS": local time with a blank zone (what ILSs expect), or UTC ("   Z")."""
    if when is None:
        return BLANK_DATE
    if utc:
        when = when.astimezone(timezone.utc) if when.tzinfo else when
        return when.strftime("%Y%m%d") + "   Z" + when.strftime("%H%M%S")
    when = when.astimezone() if when.tzinfo else when
    return when.strftime("%Y%m%d    %H%M%S")


def parse_sip_date(text: str | None) -> datetime | None:
    """A SIP2 date -> an aware datetime (blank zone: this machine's local time; "Z": UTC); None if blank or not
    a date."""
    if not text or not text.strip():
        return None
    m = _DATE.fullmatch(text)
    if not m:
        return None
    try:
        when = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[5]), int(m[6]), int(m[7]))
    except ValueError:
        return None
    if m[4].strip() == "Z":
        return when.replace(tzinfo=timezone.utc)
    return when.astimezone()


# ------------------------------------------------------------------ fixed fields

def _parse_fixed(kind: str, s: str):
    """A fixed field's text -> its value; ValueError says what is wrong."""
    if kind == "ok":
        if s not in ("0", "1"):
            raise ValueError(f"must be 0 or 1, got {s!r}")
        return s == "1"
    if kind in ("flag", "ynu"):
        allowed = {"Y": True, "N": False, " ": None} | ({"U": None} if kind == "ynu" else {})
        if s not in allowed:
            raise ValueError(f"must be {'Y, N or U' if kind == 'ynu' else 'Y or N'}, got {s!r}")
        return allowed[s]
    if kind == "int":
        digits = s.strip(" ")
        if not digits:
            return None
        if not (digits.isascii() and digits.isdigit()):
            raise ValueError(f"must be digits, got {s!r}")
        return int(digits)
    if kind == "digits":
        if not all(c in "0123456789 " for c in s):
            raise ValueError(f"must be digits, got {s!r}")
        return s
    if kind == "flags":
        if not all(c in "YN " for c in s):
            raise ValueError(f"must be Y or blank in each position, got {s!r}")
        return s
    if kind == "date":
        if s.strip() and not _DATE.fullmatch(s):
            raise ValueError(f"must be a date YYYYMMDDZZZZHHMMSS or blanks, got {s!r}")
        return s
    if not (s.isascii() and s.isprintable()):
        raise ValueError(f"must be printable ASCII, got {s!r}")
    return s


def _render_fixed(spec: Fixed, value) -> str:
    kind, width = spec.kind, spec.width
    if kind == "ok":
        s = "1" if value else "0"
    elif kind == "flag":
        s = " " if value is None else ("Y" if value else "N")
    elif kind == "ynu":
        s = "U" if value is None else ("Y" if value else "N")
    elif kind == "int":
        s = " " * width if value is None else (f"{value:0{width}d}" if isinstance(value, int) and value >= 0
                                               else repr(value))
    else:
        s = value if isinstance(value, str) else repr(value)
    if len(s) != width:
        raise ValueError(f"must be {width} character{'s' if width > 1 else ''}, got {s!r}")
    _parse_fixed(kind, s)
    return s


# ------------------------------------------------------------------ encode

def _render_var(spec: Var, value) -> list[str]:
    values = value if spec.repeat else (value,)
    out = []
    for v in values:
        if spec.kind == "flag" and isinstance(v, bool):
            v = "Y" if v else "N"
        elif spec.kind == "int" and isinstance(v, int):
            v = f"{v:0{spec.pad}d}" if v >= 0 else str(v)
        if not isinstance(v, str):
            raise ValueError(f"must be text, got {v!r}")
        out.append(v)
    return out


def encode(msg: Message, *, seq: int = 0, charset: str = "utf-8", error_detection: bool = True,
           max_field: int | None = MAX_FIELD_BYTES) -> bytes:
    """The message's bytes, CR included; with ``error_detection`` the AY``seq``AZ``checksum`` trailer.

    Raises Sip2FormatError naming the field whose value cannot be sent (wrong width, "|" or a line break in
    it, longer than ``max_field`` bytes, not writable in ``charset``)."""
    layout = LAYOUTS.get(getattr(msg, "command", ""))
    if layout is None or not isinstance(msg, layout.cls):
        raise Sip2FormatError(f"not a SIP2 message: {msg!r}")
    what = f"{NAMES[layout.command]} ({layout.command})"
    out = bytearray(layout.command.encode("ascii"))
    for name, spec in layout.fixed:
        try:
            out += _render_fixed(spec, getattr(msg, name)).encode("ascii")
        except ValueError as exc:
            raise Sip2FormatError(f"{what}: {name} {exc}") from None
    pairs = []
    for name, spec in layout.var:
        value = getattr(msg, name)
        if value is None:
            continue
        try:
            pairs += [(name, spec.code, v) for v in _render_var(spec, value)]
        except ValueError as exc:
            raise Sip2FormatError(f"{what}: {name} ({spec.code}) {exc}") from None
    pairs += [("extra field", code, value) for code, value in msg.extra]
    for name, code, value in pairs:
        if not _CODE.fullmatch(code):
            raise Sip2FormatError(f"{what}: {code!r} is not a field identifier (two letters or digits)")
        if any(c in value for c in "|\r\n\0"):
            raise Sip2FormatError(f"{what}: {name} ({code}) must not contain '|', a line break or NUL: {value!r}")
        try:
            data = value.encode(charset)
        except UnicodeEncodeError:
            raise Sip2FormatError(f"{what}: {name} ({code}) cannot be written in {charset}: {value!r}") from None
        if max_field is not None and len(data) > max_field:
            raise Sip2FormatError(f"{what}: {name} ({code}) is {len(data)} bytes in {charset}, "
                                  f"longer than SIP2's {max_field}")
        out += code.encode("ascii") + data + b"|"
    if error_detection:
        if layout.command not in _RESEND:
            if not 0 <= seq <= 9:
                raise Sip2FormatError(f"{what}: the sequence number must be 0-9, got {seq}")
            out += b"AY%d" % seq
        out += b"AZ"
        out += checksum(bytes(out)).encode("ascii")
    return bytes(out) + CR


# ------------------------------------------------------------------ decode

def next_line(buf: bytes | bytearray, max_line: int = MAX_LINE_BYTES) -> tuple[int, bytes | None]:
    """Frame by CR: (bytes consumed, the next message without its CR), or (consumed, None) until a CR comes.
    LFs before a message (CRLF senders) are skipped. Raises Sip2FormatError when no CR comes within
    ``max_line`` bytes: the stream cannot be trusted any more (the caller closes the connection)."""
    start = 0
    while start < len(buf) and buf[start] == 0x0A:
        start += 1
    end = buf.find(CR, start)
    if (end < 0 and len(buf) - start > max_line) or end - start > max_line:
        raise Sip2FormatError(f"no end of message (CR) within {max_line} bytes")
    if end < 0:
        return start, None
    return end + 1, bytes(buf[start:end])


def decode(line: bytes, charset: str = "utf-8") -> Message:
    """One message (with or without its CR) -> its typed object. Raises Sip2FormatError (only)."""
    return decode_frame(line, charset).message


def decode_frame(line: bytes, charset: str = "utf-8", *, max_line: int = MAX_LINE_BYTES) -> Frame:
    """One message -> Frame(message, seq, checksummed). A checksum present is verified (Sip2ChecksumError)."""
    raw = bytes(line)
    if len(raw) > max_line:
        raise Sip2FormatError(f"a message of {len(raw)} bytes is longer than the limit of {max_line}")
    raw = raw.lstrip(b"\n").rstrip(b"\r\n")
    if not raw:
        raise Sip2FormatError("an empty message")
    bad = next((i for i, b in enumerate(raw) if b in (0, 0x0D)), None)
    if bad is not None:
        raise Sip2FormatError(f"a {'NUL' if raw[bad] == 0 else 'CR'} byte inside the message at byte {bad}")
    seq, checksummed, body = None, False, raw
    m = _TRAILER.search(raw)
    if m:
        upto = raw[:m.start() + 2]
        if (sum(upto) + int(m[1], 16)) & 0xFFFF:
            raise Sip2ChecksumError(f"checksum {m[1].decode()} does not match the message (its bytes give "
                                    f"{checksum(upto)})")
        checksummed, body = True, raw[:m.start()]
        s = _SEQ.search(body)
        if s:
            seq, body = int(s[1]), body[:s.start()]
    command = body[:2].decode("ascii", "replace")
    layout = LAYOUTS.get(command)
    if layout is None:
        raise Sip2FormatError(f"unknown message type {command!r} (the message starts {raw[:20]!r})")
    what = f"{NAMES[command]} ({command})"
    width = layout.fixed_width
    head = body[2:2 + width]
    if len(head) < width:
        raise Sip2FormatError(f"{what} is truncated: its fixed fields take {width} characters, got {len(head)}")
    try:
        head_text = head.decode("ascii")
    except UnicodeDecodeError:
        raise Sip2FormatError(f"{what}: its fixed fields are not ASCII: {head!r}") from None
    values: dict = {}
    pos = 0
    for name, spec in layout.fixed:
        try:
            values[name] = _parse_fixed(spec.kind, head_text[pos:pos + spec.width])
        except ValueError as exc:
            raise Sip2FormatError(f"{what}: {name} {exc}") from None
        pos += spec.width
    _decode_vars(layout, body[2 + width:], charset, values, what)
    return Frame(layout.cls(**values), seq, checksummed)


def _decode_vars(layout, rest: bytes, charset: str, values: dict, what: str) -> None:
    try:
        text, lossy = rest.decode(charset), False
    except UnicodeDecodeError:
        text, lossy = rest.decode(charset, "replace"), True
    except LookupError:
        raise Sip2FormatError(f"unknown character set {charset!r}") from None
    by_code = layout.by_code()
    lists: dict[str, list[str]] = {}
    extra: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "|":                       # a stray delimiter (some servers put one after the fixed part)
            i += 1
            continue
        code = text[i:i + 2]
        if not _CODE.fullmatch(code):
            raise Sip2FormatError(f"{what}: expected a field identifier at character {2 + layout.fixed_width + i},"
                                  f" got {code!r}")
        end = text.find("|", i + 2)
        end = n if end < 0 else end
        value, i = text[i + 2:end], end + 1
        if code not in by_code:
            extra.append((code, value))
            continue
        name, spec = by_code[code]
        if spec.kind == "id" and lossy and "\ufffd" in value:
            raise Sip2FormatError(f"{what}: {name} ({code}) is not valid {charset}")
        if spec.repeat:
            lists.setdefault(name, []).append(value)
        elif name not in values:
            values[name] = _parse_var(spec, value)
    for name, items in lists.items():
        values[name] = tuple(items)
    values["extra"] = tuple(extra)


def _parse_var(spec: Var, value: str):
    if spec.kind == "flag":
        return {"Y": True, "N": False}.get(value.strip())
    if spec.kind == "int":
        v = value.strip()
        return int(v) if v.isascii() and v.isdigit() else None
    return value


def redact(line: bytes, charset: str = "utf-8") -> str:
    """A message for the log, passwords (CO, AC, AD) hidden."""
    text = bytes(line).rstrip(b"\r\n").decode(charset, "replace")
    return re.sub(r"(^93..CN[^|]*\|CO|\|CO|\|AC|\|AD)[^|]*", r"\1***", text)
