"""The content manifest: what the large screen may show, when, and the SHA-256 of every file it needs.

The library signs the exact bytes of ``manifest.json`` with an Ed25519 key; the signature travels beside
it as ``manifest.sig`` (the 64 signature bytes, base64). A bookcase holds the library's public key(s) in
its config and refuses anything else. The manifest, version 1::

    {"format": 1, "library": "minhang", "version": 1764500000, "created": "2026-11-30T18:00:00+08:00",
     "assets": {"video/intro.mp4": {"sha256": "<64 hex>", "bytes": 1234567}, ...},
     "items": [{"id": "intro", "kind": "video", "asset": "video/intro.mp4",
                "priority": 0, "duration_s": 30,
                "when": {"from": "2026-12-01", "until": "2026-12-31", "days": ["sat", "sun"],
                         "times": ["09:00-12:00", "13:00-24:00"]}}, ...],
     "fallback": ["intro", ...]}

Item kinds and their fields (text fields are a string, or ``{"zh": ..., "en": ...}``):

- ``video``: ``asset`` (H.264 MP4); ``duration_s`` caps it (default: the whole video).
- ``image``: ``asset`` (PNG or JPEG), shown scaled to fit; ``duration_s``.
- ``book``: a recommendation card: ``title``; optional ``author``, ``why``, ``where``, ``cover`` (asset).
- ``qr``: a QR card: ``title``, ``body``, ``url`` (what the code encodes), optional ``caption``.

``version`` only grows: a bookcase refuses a manifest not newer than the one it plays, so an old signed
manifest replayed by anyone cannot bring old content back.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time

import fastjsonschema
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kiosk.content import ContentError

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
KINDS = ("video", "image", "book", "qr")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_DURATION_S = 10.0
MAX_MANIFEST_BYTES = 1 << 20

# An asset path: relative, "/"-separated, no "." or ".." parts, nothing a shell or a URL would misread.
_ASSET = {"type": "string", "pattern": r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$",
          "maxLength": 200}
_TEXT = {"anyOf": [{"type": "string", "maxLength": 500},
                   {"type": "object", "properties": {"zh": {"type": "string", "maxLength": 500},
                                                     "en": {"type": "string", "maxLength": 500}},
                    "additionalProperties": False, "minProperties": 1}]}
_DATE = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_WINDOW = {"type": "string", "pattern": r"^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$"}
_SCHEMA = {
    "type": "object",
    "required": ["format", "library", "version", "assets", "items"],
    "properties": {
        "format": {"const": FORMAT},
        "library": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"},
        "version": {"type": "integer", "minimum": 1},
        "created": {"type": "string", "maxLength": 40},
        "assets": {"type": "object", "maxProperties": 1000, "propertyNames": _ASSET, "additionalProperties": {
            "type": "object", "required": ["sha256", "bytes"], "additionalProperties": False,
            "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                           "bytes": {"type": "integer", "minimum": 0}}}},
        "items": {"type": "array", "maxItems": 500, "items": {
            "type": "object", "required": ["id", "kind"], "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]{1,64}$"},
                "kind": {"enum": list(KINDS)},
                "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
                "every": {"type": "integer", "minimum": 1, "maximum": 100},
                "duration_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
                "asset": _ASSET, "cover": _ASSET,
                "title": _TEXT, "author": _TEXT, "why": _TEXT, "where": _TEXT, "body": _TEXT, "caption": _TEXT,
                "url": {"type": "string", "minLength": 1, "maxLength": 1000},
                "when": {"type": "object", "additionalProperties": False, "properties": {
                    "from": _DATE, "until": _DATE,
                    "days": {"type": "array", "items": {"enum": list(DAYS)}, "minItems": 1, "uniqueItems": True},
                    "times": {"type": "array", "items": _WINDOW, "minItems": 1}}},
            }}},
        "fallback": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
    },
}
_validate = fastjsonschema.compile(_SCHEMA)
_REQUIRED = {"video": ("asset",), "image": ("asset",), "book": ("title",), "qr": ("title", "url")}


# --- the schedule's parts ------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """A time of day from ``start`` up to (not including) ``end``, in minutes after midnight (end <= 1440)."""
    start: int
    end: int

    def __contains__(self, t: time) -> bool:
        return self.start <= t.hour * 60 + t.minute < self.end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"


@dataclass(frozen=True)
class When:
    """When an item is scheduled: dates ``first``..``last`` (inclusive; None: open), weekdays (0 = Monday),
    and time-of-day windows, all in the bookcase's local time."""
    first: date | None = None
    last: date | None = None
    days: frozenset[int] = frozenset(range(7))
    windows: tuple[Window, ...] = (Window(0, 1440),)

    def active(self, at: datetime) -> bool:
        d = at.date()
        if self.first is not None and d < self.first:
            return False
        if self.last is not None and d > self.last:
            return False
        return d.weekday() in self.days and any(at.time() in w for w in self.windows)


def parse_window(text: str) -> Window:
    """``"HH:MM-HH:MM"``; the end may be ``24:00``. A window over midnight must be written as two."""
    m = re.fullmatch(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})", text)
    if m is None:
        raise ValueError(f"{text!r} is not a time window like 09:00-17:30")
    h1, m1, h2, m2 = map(int, m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise ValueError(f"{text!r} ends before it starts; a window over midnight is two windows, "
                         f"{text[:5]}-24:00 and 00:00-{text[6:]}")
    return Window(start, end)


def parse_when(raw: dict) -> When:
    try:
        first = date.fromisoformat(raw["from"]) if "from" in raw else None
        last = date.fromisoformat(raw["until"]) if "until" in raw else None
    except ValueError as exc:
        raise ValueError(f"a date is not a calendar date: {exc}") from None
    if first and last and last < first:
        raise ValueError(f"'until' {last} is before 'from' {first}")
    days = frozenset(DAYS.index(d) for d in raw.get("days", DAYS))
    windows = tuple(parse_window(t) for t in raw.get("times", ("00:00-24:00",)))
    return When(first, last, days, windows)


# --- the manifest --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Asset:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Item:
    id: str
    kind: str
    priority: int = 0
    every: int | None = None              # interleaved: shown once after every ``every`` other items
    duration_s: float | None = None       # None: a video's own length; other kinds DEFAULT_DURATION_S
    when: When | None = None              # None: always scheduled
    asset: str | None = None
    cover: str | None = None
    url: str | None = None
    texts: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()   # field -> ((lang, text), ...)

    def text(self, field: str, lang: str = "zh") -> str:
        """A text field in ``lang``, else in Chinese, else in whatever language it has; "" if absent."""
        for name, by_lang in self.texts:
            if name == field:
                found = dict(by_lang)
                return found.get(lang) or found.get("zh") or next(iter(found.values()), "")
        return ""

    @property
    def seconds(self) -> float | None:
        return self.duration_s if self.duration_s is not None or self.kind == "video" else DEFAULT_DURATION_S

    def assets(self) -> tuple[str, ...]:
        return tuple(a for a in (self.asset, self.cover) if a)


@dataclass(frozen=True)
class Manifest:
    library: str
    version: int
    created: str
    assets: dict[str, Asset]
    items: tuple[Item, ...]
    fallback: tuple[str, ...]
    raw: bytes                            # the signed bytes, kept as they came

    def item(self, item_id: str) -> Item:
        return next(i for i in self.items if i.id == item_id)


def parse(raw: bytes) -> Manifest:
    """The manifest in ``raw`` (already verified); ContentError names what is wrong."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ContentError(f"the manifest is {len(raw)} bytes, more than the limit of {MAX_MANIFEST_BYTES}")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContentError(f"the manifest is not JSON text: {exc}") from None
    try:
        _validate(data)
    except fastjsonschema.JsonSchemaException as exc:
        raise ContentError(f"the manifest does not match format {FORMAT}: {exc.message}") from None
    assets = {path: Asset(path, a["sha256"], a["bytes"]) for path, a in data["assets"].items()}
    items: list[Item] = []
    for n, raw_item in enumerate(data["items"]):
        where = f"item {n + 1} ({raw_item['id']!r})"
        missing = [f for f in _REQUIRED[raw_item["kind"]] if f not in raw_item]
        if missing:
            raise ContentError(f"{where}: a {raw_item['kind']} item needs {', '.join(missing)}")
        for field in ("asset", "cover"):
            if field in raw_item and raw_item[field] not in assets:
                raise ContentError(f"{where}: {field} {raw_item[field]!r} is not among the manifest's assets")
        try:
            when = parse_when(raw_item["when"]) if "when" in raw_item else None
        except ValueError as exc:
            raise ContentError(f"{where}: {exc}") from None
        texts = tuple((f, tuple(sorted({"zh": v}.items() if isinstance(v, str) else v.items())))
                      for f, v in raw_item.items() if f in ("title", "author", "why", "where", "body", "caption"))
        items.append(Item(id=raw_item["id"], kind=raw_item["kind"], priority=raw_item.get("priority", 0),
                          every=raw_item.get("every"), duration_s=raw_item.get("duration_s"), when=when,
                          asset=raw_item.get("asset"), cover=raw_item.get("cover"), url=raw_item.get("url"),
                          texts=texts))
    ids = [i.id for i in items]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ContentError(f"item ids must be unique; repeated: {', '.join(dupes)}")
    fallback = tuple(data.get("fallback", ()))
    unknown = [f for f in fallback if f not in ids]
    if unknown:
        raise ContentError(f"the fallback names items the manifest does not have: {', '.join(unknown)}")
    return Manifest(library=data["library"], version=data["version"], created=data.get("created", ""),
                    assets=assets, items=tuple(items), fallback=fallback, raw=raw)


# --- signatures ----------------------------------------------------------------------------------

def public_key(text: str) -> Ed25519PublicKey:
    """A public key as the config holds it: the 32 raw key bytes, base64."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise ValueError("not an Ed25519 public key (32 bytes, base64; `kiosk content keygen` prints one)") from None


def public_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(pub.public_bytes_raw()).decode("ascii")


def sign(raw: bytes, key: Ed25519PrivateKey) -> bytes:
    """The contents of ``manifest.sig`` for the manifest bytes ``raw``."""
    return base64.b64encode(key.sign(raw)) + b"\n"


def verify(raw: bytes, signature: bytes, keys: tuple[Ed25519PublicKey, ...]) -> Manifest:
    """The manifest, if one of ``keys`` signed exactly ``raw``; else ContentError. Parsed only once trusted."""
    if not keys:
        raise ContentError("no public key is configured to check content signatures ([content] public_keys)")
    try:
        sig = base64.b64decode(signature.strip(), validate=True)
    except binascii.Error:
        raise ContentError("the manifest's signature is not base64") from None
    if len(sig) != 64:
        raise ContentError(f"the manifest's signature is {len(sig)} bytes, not an Ed25519 signature's 64")
    for key in keys:
        try:
            key.verify(sig, raw)
            break
        except InvalidSignature:
            continue
    else:
        raise ContentError("the manifest's signature does not match any of the library's public keys: "
                           "refused (altered in transit, or signed with another key)")
    return parse(raw)


def created_now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")
