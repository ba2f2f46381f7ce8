"""The library's side of content: a folder of assets and ``content.toml`` -> a signed ``manifest.json``.

A content folder, as the library's staff keep it::

    content.toml            what to show and when (below), written by hand
    video/intro.mp4         the assets the items name, by their path inside the folder
    manifest.json           written by ``sign``: the manifest, with the SHA-256 of every asset
    manifest.sig            written by ``sign``: its Ed25519 signature (kiosk.content.manifest.sign)

``content.toml`` mirrors the manifest's items (see kiosk.content.manifest)::

    library = "minhang"
    fallback = ["intro"]
    [[items]]
    id = "intro"
    kind = "video"
    asset = "video/intro.mp4"
    [items.when]
    from = 2026-12-01            # a TOML date or "YYYY-MM-DD"
    until = 2026-12-31
    days = ["sat", "sun"]
    times = ["09:00-12:00"]

The folder is what the library's web server publishes; ``kiosk content serve`` serves one for testing.
The private key never belongs in it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
import tomllib
from datetime import date, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from kiosk.content import ContentError
from kiosk.content.manifest import (
    DAYS,
    FORMAT,
    KINDS,
    MANIFEST,
    SIGNATURE,
    Item,
    Manifest,
    created_now,
    parse,
    parse_when,
    public_text,
    verify,
)
from kiosk.content.manifest import sign as sign_bytes
from kiosk.content.store import sha256_file

LOGGER = logging.getLogger(__name__)

SOURCE = "content.toml"
TEXT_FIELDS = ("title", "author", "why", "where", "body", "caption")
ITEM_FIELDS = {"id", "kind", "asset", "cover", "url", "duration_s", "priority", "every", "when", *TEXT_FIELDS}
WHEN_FIELDS = {"from", "until", "days", "times"}
# The manifest's rule for an asset path (kiosk.content.manifest), said in words when a file breaks it.
_ASSET_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*")


class AuthoringError(ContentError):
    """A content folder that cannot be signed: the message names the file, the item and what is wrong."""


class KeyFileError(AuthoringError):
    """A private key file that is missing, unreadable or not an Ed25519 key."""


# --- keys ----------------------------------------------------------------------------------------

def keygen(out: Path) -> Ed25519PrivateKey:
    """A new signing key, written to ``out`` (PKCS#8 PEM, mode 0600); an existing file is never overwritten."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{out} exists already; not overwritten (a lost key cannot sign again: move it "
                           "away yourself if you mean to replace it)") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {out}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``path`` (PEM, as ``keygen`` writes it); KeyFileError says what is wrong."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{path}: no such key file (`kiosk content keygen --out FILE` makes one)") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the key file ({exc.strerror or exc})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyFileError(f"{path}: the key is protected by a password; use an unencrypted PKCS#8 key "
                           "(kept offline) as `kiosk content keygen` writes") from None
    except ValueError:
        raise KeyFileError(f"{path}: not a PEM private key (`kiosk content keygen --out FILE` makes one)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: a {type(key).__name__.lstrip('_')} key, not an Ed25519 key; content is "
                           "signed with Ed25519 (`kiosk content keygen --out FILE`)")
    return key


# --- content.toml -> manifest.json ---------------------------------------------------------------

def _plain(value: object) -> object:
    """TOML values as JSON has them: dates become "YYYY-MM-DD"."""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() and value.tzinfo is None \
            else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _read_source(folder: Path) -> dict:
    source = folder / SOURCE
    if not folder.is_dir():
        raise AuthoringError(f"{folder}: not a folder")
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuthoringError(f"{folder}: no {SOURCE} here; a content folder holds {SOURCE} and the assets "
                             "its items name") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthoringError(f"{source}: cannot read it ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AuthoringError(f"{source}: not valid TOML: {exc}") from None


def _item(source: Path, n: int, raw: object) -> dict:
    if not isinstance(raw, dict):
        raise AuthoringError(f"{source}: items[{n}] is not a table ([[items]])")
    where = f"{source}: item {n} ({raw.get('id', 'without an id')!r})"
    if "id" not in raw or not isinstance(raw["id"], str):
        raise AuthoringError(f"{where}: every item needs an id (a short name: letters, digits, '.', '_', '-')")
    unknown = sorted(set(raw) - ITEM_FIELDS)
    if unknown:
        raise AuthoringError(f"{where}: unknown field(s) {', '.join(unknown)} (an item has "
                             f"{', '.join(sorted(ITEM_FIELDS))})")
    if raw.get("kind") not in KINDS:
        raise AuthoringError(f"{where}: kind is {raw.get('kind')!r}, one of {', '.join(KINDS)} is needed")
    item = _plain(raw)
    when = item.get("when")
    if when is not None:
        if not isinstance(when, dict):
            raise AuthoringError(f"{where}: 'when' must be a table ([items.when])")
        extra = sorted(set(when) - WHEN_FIELDS)
        if extra:
            raise AuthoringError(f"{where}: unknown field(s) in when: {', '.join(extra)} (from, until, days, times)")
        for key in ("days", "times"):
            if key in when and not isinstance(when[key], list):
                example = '["sat", "sun"]' if key == "days" else '["09:00-12:00"]'
                raise AuthoringError(f"{where}: when.{key} must be a list, e.g. {key} = {example}")
        bad_days = [d for d in when.get("days", []) if d not in DAYS]
        if bad_days:
            raise AuthoringError(f"{where}: days {bad_days} are not among {', '.join(DAYS)}")
        try:
            parse_when(when)
        except (ValueError, TypeError, AttributeError) as exc:
            raise AuthoringError(f"{where}: bad window: {exc}") from None
    return item


def _asset(folder: Path, where: str, field: str, path: object) -> Path:
    if not isinstance(path, str) or not path:
        raise AuthoringError(f"{where}: {field} must be the path of a file in the content folder")
    if not _ASSET_PATH.fullmatch(path) or len(path) > 200:
        raise AuthoringError(f"{where}: {field} {path!r}: an asset path is relative to the folder, uses '/', and "
                             "holds only letters A-Z a-z, digits, '.', '_' and '-' (rename the file)")
    file = folder / path
    if not file.is_file():
        raise AuthoringError(f"{where}: {field} {path!r}: missing asset file {file}")
    if not file.resolve().is_relative_to(folder.resolve()):
        raise AuthoringError(f"{where}: {field} {path!r} leads outside the content folder")
    return file


def previous_version(folder: Path) -> int:
    """The version of the folder's current manifest.json, 0 if there is none (or it cannot be read)."""
    try:
        version = json.loads((Path(folder) / MANIFEST).read_bytes()).get("version", 0)
    except (OSError, ValueError, AttributeError):
        return 0
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def build(folder: Path, version: int | None = None) -> bytes:
    """The bytes of ``manifest.json`` for the content folder ``folder``: every asset its items name hashed,
    checked as a bookcase will check it. ``version`` defaults to now (unix seconds), always above the folder's
    previous manifest. AuthoringError names the file, the item and what is wrong."""
    folder = Path(folder)
    source = folder / SOURCE
    data = _read_source(folder)
    unknown = sorted(set(data) - {"library", "fallback", "items"})
    if unknown:
        raise AuthoringError(f"{source}: unknown key(s) {', '.join(unknown)} (library, fallback, [[items]])")
    library = data.get("library")
    if not isinstance(library, str) or not library:
        raise AuthoringError(f"{source}: library is missing (library = \"minhang\": the library these bookcases "
                             "belong to)")
    raw_items = data.get("items", [])
    if not isinstance(raw_items, list) or not raw_items:
        raise AuthoringError(f"{source}: no [[items]]: the screen would have nothing to show")
    items, assets = [], {}
    for n, raw in enumerate(raw_items, 1):
        item = _item(source, n, raw)
        where = f"{source}: item {n} ({item['id']!r})"
        for field in ("asset", "cover"):
            if field in item and item[field] not in assets:
                file = _asset(folder, where, field, item[field])
                assets[item[field]] = {"sha256": sha256_file(file), "bytes": file.stat().st_size}
        items.append(item)
    before = previous_version(folder)
    if version is None:
        version = max(int(time.time()), before + 1)
    elif version <= before:
        raise AuthoringError(f"{folder / MANIFEST}: version {version} is not above the folder's current version "
                             f"{before}; bookcases would refuse it as old")
    manifest = {"format": FORMAT, "library": library, "version": version, "created": created_now(),
                "assets": assets, "items": items}
    if "fallback" in data:
        manifest["fallback"] = data["fallback"]
    raw_json = (json.dumps(manifest, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    try:
        parse(raw_json)
    except ContentError as exc:
        raise AuthoringError(f"{source}: {exc}") from None
    return raw_json


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sign(folder: Path, key: Ed25519PrivateKey, version: int | None = None) -> Manifest:
    """Build the folder's manifest, sign it and write ``manifest.json`` and ``manifest.sig`` (each replaced in
    one rename). A bookcase that fetches between the two renames finds them mismatched, refuses, and retries."""
    folder = Path(folder)
    raw = build(folder, version)
    signature = sign_bytes(raw, key)
    manifest = verify(raw, signature, (key.public_key(),))
    try:
        _write_atomically(folder / MANIFEST, raw)
        _write_atomically(folder / SIGNATURE, signature)
    except OSError as exc:
        raise AuthoringError(f"{folder}: cannot write the manifest ({exc.strerror or exc})") from None
    LOGGER.info("content %s: version %d signed by key %s…: %d items, %d files", folder, manifest.version,
                public_text(key)[:8], len(manifest.items), len(manifest.assets))
    return manifest


# --- checking what a folder holds ----------------------------------------------------------------

def check_folder(folder: Path, keys: tuple[Ed25519PublicKey, ...]) -> Manifest:
    """The folder's signed manifest if its signature is good and every asset matches its hash and size;
    ContentError names the first thing wrong."""
    folder = Path(folder)
    try:
        raw = (folder / MANIFEST).read_bytes()
        sig = (folder / SIGNATURE).read_bytes()
    except OSError as exc:
        raise ContentError(f"{folder}: no signed manifest to check ({exc.strerror or exc}; "
                           "`kiosk content sign` writes one)") from None
    manifest = verify(raw, sig, keys)
    for asset in manifest.assets.values():
        file = folder / asset.path
        if not file.is_file():
            raise ContentError(f"{asset.path}: missing from {folder}")
        if file.stat().st_size != asset.size or sha256_file(file) != asset.sha256:
            raise ContentError(f"{asset.path}: does not match the manifest's hash (changed since it was signed: "
                               "sign again)")
    return manifest


def describe(item: Item) -> str:
    """One line for an item: what it is and when it plays."""
    what = item.asset or item.text("title") or item.url or ""
    head = (f"{item.id} ({item.kind}{', priority ' + str(item.priority) if item.priority else ''}"
            f"{', after every ' + str(item.every) + ' items' if item.every else ''}) {what}")
    return f"{head}: {describe_when(item)}"


def describe_when(item: Item) -> str:
    w = item.when
    if w is None:
        return "always"
    parts = []
    if w.first or w.last:
        parts.append(f"{w.first or '…'} to {w.last or '…'}")
    if len(w.days) < 7:
        parts.append(",".join(DAYS[d] for d in sorted(w.days)))
    parts.append(" ".join(str(x) for x in w.windows))
    return ", ".join(parts)
