"""TOML configuration -> frozen dataclasses; every error names the file, the key and what is wrong."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk import proc
from kiosk.content.manifest import parse_window, public_key
from kiosk.ids import BOOKCASE_ID_RULE, valid_bookcase_id

# Readable defaults. Figures from the library's 2020 report (docs/design.md §9).
DEFAULT_LOAN_LIMIT = 15
DEFAULT_LOAN_DAYS = 30


class ConfigError(Exception):
    """A configuration problem, worded for an operator: file, key and what is wrong. ``errors`` lists every
    problem the file has (this one first): a config is checked whole, so an operator fixes all at once."""

    def __init__(self, path: Path | str, key: str, message: str) -> None:
        self.path = str(path)
        self.key = key
        self.message = message
        self.errors: list[ConfigError] = [self]
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + message)

    @classmethod
    def every(cls, errors: list[ConfigError]) -> ConfigError:
        """One error standing for all of ``errors``: its text lists them, one a line."""
        first = errors[0]
        if len(errors) == 1:
            return first
        error = cls(first.path, first.key, first.message)
        error.errors = list(errors)
        error.args = (f"{len(errors)} problems:\n" + "\n".join(f"  {e}" for e in errors),)
        return error


@dataclass(frozen=True)
class Bookcase:
    id: str
    name: str
    name_en: str = ""                    # the name the screen shows in English ("" : the Chinese name)
    latitude: float | None = None        # where it stands (WGS 84 degrees), for "the nearest bookcase that has it"
    longitude: float | None = None
    address: str = ""                    # the street address patrons of other bookcases are shown


@dataclass(frozen=True)
class Door:
    number: int
    board: int
    lock: int
    reader: int
    capacity: int


@dataclass(frozen=True)
class LockBoardConfig:
    port: str
    baudrate: int = 19200
    lock_bit_unlocked: int = 1
    sensor_bit_open: int = 1
    unlock_pulse_ms: int = 500
    poll_interval_ms: int = 100
    open_poll_interval_ms: int = 20
    timeout_ms: int = 250
    retries: int = 2


@dataclass(frozen=True)
class RfidConfig:
    port: str
    baudrate: int = 38400
    timeout_ms: int = 6000
    retries: int = 2


@dataclass(frozen=True)
class ScannerConfig:
    port: str
    baudrate: int = 9600


@dataclass(frozen=True)
class PcscConfig:
    """The PC/SC contactless reader of library cards; off unless enabled (then only the scanner reads cards)."""
    enabled: bool = False
    reader: str = ""                     # part of the reader's name; "" = the first reader pcscd lists
    debounce_ms: int = 1500              # the same card back on the reader within this long is the same tap


@dataclass(frozen=True)
class PolicyConfig:
    default_limit: int = DEFAULT_LOAN_LIMIT
    loan_days: int = DEFAULT_LOAN_DAYS
    class_limits: dict[str, int] = field(default_factory=dict)
    offline_extra_loans: int = 5        # offline: at most this many loans per patron until the next sync


@dataclass(frozen=True)
class SessionConfig:
    choose_door_timeout_s: float = 30.0
    door_open_timeout_s: float = 20.0
    door_open_prompt_s: float = 30.0
    door_open_alarm_s: float = 90.0
    receipt_s: float = 8.0
    inventory_max_rounds: int = 6
    rescan_interval_s: float = 10.0
    default_door: int | None = None
    pin_timeout_s: float = 30.0          # staff: time to type the PIN after the staff card
    pin_tries: int = 3                   # staff: wrong PINs before the card is refused for a while
    restock_summary_s: float = 30.0      # staff: how long the restock summary stays on screen
    disk_low_mb: int = 100               # alarm when the data partition has less free space than this


@dataclass(frozen=True)
class EcardConfig:
    """The library's e-card key (verifies the WeChat QR codes); None: e-cards are not accepted here."""
    key: str | None = None
    skew_s: int = 30


@dataclass(frozen=True)
class ScreenConfig:
    """The touch screen: size in pixels (portrait 1080x1920 by default), full screen, language, voice."""
    width: int = 1080
    height: int = 1920
    fullscreen: bool = True
    language: str = "zh"
    voice: bool = True
    on_hours: tuple[str, ...] = ()       # "HH:MM-HH:MM" windows the screen is on; () = always on
    power: str = "none"                  # the display power backend: none | command
    power_on_command: str | None = None  # with power = "command": e.g. "vcgencmd display_power 1"
    power_off_command: str | None = None
    wake_s: int = 120                    # outside on_hours, a tap or a card keeps the screen on this long
    video_volume: float = 0.0            # the promotional videos' sound, 0..1; 0 (the default) mutes them
    reserve_url: str | None = None       # the library's WeChat page to reserve a title no bookcase holds (a QR code)


@dataclass(frozen=True)
class ContentConfig:
    """The large screen's signed content (docs/content.md). Without public keys, no update is accepted and
    the screen shows its built-in cards."""
    public_keys: tuple[str, ...] = ()    # the library's Ed25519 public keys, base64 (any one may sign)
    url: str | None = None               # the library's content folder over HTTP(S): manifest.json, .sig, assets
    check_interval_s: int = 900          # how often to ask ``url`` for a newer manifest
    max_kbps: int = 2000                 # download bandwidth cap in kilobytes per second (0: no cap)
    dir: Path | None = None              # None: <data_dir>/content
    timezone: str = "Asia/Shanghai"      # the schedule's local time


@dataclass(frozen=True)
class MqttConfig:
    """The fleet link (docs/design.md §6). TLS when ``tls``; the password comes from ``password_file`` only."""
    host: str
    port: int
    topic_root: str                      # "citybook/v1/<library>/"
    client_id: str                       # the bookcase id: the broker keeps this session for us
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: Path | None = None           # None with tls: the system's CA store
    tls_cert: Path | None = None
    tls_key: Path | None = None
    keepalive_s: int = 60
    session_expiry_s: int = 7 * 24 * 3600
    inflight: int = 32                   # outbox events published and not yet acknowledged, at most
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    max_payload_kb: int = 256            # larger inbound messages are refused unread


@dataclass(frozen=True)
class Config:
    path: Path
    library: str
    bookcase: Bookcase
    data_dir: Path
    secret: str
    doors: tuple[Door, ...]
    lockboard: LockBoardConfig
    rfid: RfidConfig
    scanner: ScannerConfig
    policy: PolicyConfig
    session: SessionConfig
    seed_demo_data: bool = False
    intent_socket: Path | None = None
    pcsc: PcscConfig = PcscConfig()
    ecard: EcardConfig = EcardConfig()
    screen: ScreenConfig = ScreenConfig()
    mqtt: MqttConfig | None = None       # None: no fleet link, the bookcase runs offline
    content: ContentConfig = ContentConfig()

    def door(self, number: int) -> Door:
        for door in self.doors:
            if door.number == number:
                return door
        raise KeyError(number)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "kiosk.sqlite3"

    @property
    def content_dir(self) -> Path:
        return self.content.dir or self.data_dir / "content"


RUN_COPY_MARK = "# Written by `make demo` (pid "


def running_config(path: Path | str) -> Path:
    """The config a bookcase started from ``path`` really runs: `make demo` runs a copy with its broker and
    content server added (``.<name>.run.toml`` beside it, its first line naming the demo's pid). While that demo
    runs, the operator tools read the copy, so `kiosk sync status --config config/demo.toml` tells the truth."""
    path = Path(path)
    copy = path.with_name(f".{path.stem}.run.toml")
    try:
        first = copy.read_text(encoding="utf-8").split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return path
    if not first.startswith(RUN_COPY_MARK):
        return path
    return copy if _mark_alive(first[len(RUN_COPY_MARK):].split(")", 1)[0]) else path


def run_copy_mark(pid: int) -> str:
    """The start of a run copy's first line: the demo's pid and its start time (a pid alone may be reused)."""
    return f"{RUN_COPY_MARK}{pid}, started {proc.started(pid)})"


def _mark_alive(mark: str) -> bool:
    """"1234, started 5678" (or an older "1234"): does that very process still run?"""
    pid, _, start = mark.partition(", started ")
    if not pid.isdigit():
        return False
    now = proc.started(int(pid))
    return now is not None and (not start or start == str(now))


def load_config(path: Path | str) -> Config:
    """Read and check a bookcase config file. Raises ConfigError, never a bare traceback."""
    path = Path(path)
    return _Reader(path).load(read_toml(path))


def read_toml(path: Path) -> dict:
    """A TOML file's tables; ConfigError (file, problem) if it cannot be read or is not TOML (the gateway's
    config is read the same way)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(path, "", f"cannot read the file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, "", "the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML ({exc})") from None
    return data


_PLACEHOLDER = {str: "", int: 0, float: 0.0, bool: False, list: [], dict: {}}


class _Absent(dict):
    """The stand-in for a table that is missing or not a table: that mistake is noted once, not again for each
    key it should have held."""


class _Reader:
    """Walks the parsed TOML, checking every key, and turns it into dataclasses.

    A mistake is noted and the walk goes on with a stand-in value, so ``load`` reports every mistake of the
    file at once (one per key); a check that cannot go on raises ``fail(...)``, which ends only its part."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.resolve().parent
        self.errors: list[ConfigError] = []

    def load(self, data: dict) -> Any:
        """``config(data)``, or ConfigError listing every mistake found."""
        try:
            result = self.config(data)
        except ConfigError as exc:
            self.errors.append(exc)
        except Exception:
            if not self.errors:        # a stand-in value may trip a later check: only the mistakes count
                raise
        if self.errors:
            raise ConfigError.every(self.errors)
        return result

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.path, key, message)

    def note(self, key: str, message: str) -> None:
        """A mistake: remembered (the first for each key), and the walk goes on."""
        if not any(e.key == key for e in self.errors):
            self.errors.append(self.fail(key, message))

    def _bad(self, key: str, message: str, kind: type, default: Any, low: float | None, choices: tuple,
             noted: bool = False) -> Any:
        """A stand-in value for a wrong one, the mistake noted (unless ``noted`` already, e.g. its table's)."""
        if not noted:
            self.note(key, message)
        if default is not ...:
            return default
        if choices:
            return choices[0]
        value = _PLACEHOLDER.get(kind)
        return kind(low) if low is not None and kind in (int, float) else value

    def table(self, data: dict, key: str, prefix: str = "", required: bool = True) -> dict:
        full = prefix + key
        if key not in data:
            if required:
                self.note(full, "missing table")
                return _Absent()
            return {}
        value = data[key]
        if not isinstance(value, dict):
            self.note(full, f"expected a table, got {_kind(value)}")
            return _Absent()
        return value

    def value(self, data: dict, key: str, prefix: str, kind: type, default: Any = ..., *,
              low: float | None = None, high: float | None = None, choices: tuple = ()) -> Any:
        full = prefix + key
        if key not in data:
            if default is ... and isinstance(data, _Absent):
                return self._bad(full, "", kind, default, low, choices, noted=True)
            if default is ...:
                return self._bad(full, "missing", kind, default, low, choices)
            return default
        value = data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            return self._bad(full, f"expected {_kind_name(kind)}, got {_kind(value)} {value!r}", kind, default, low,
                             choices)
        if kind is str and not value.strip():
            return self._bad(full, "must not be empty", kind, default, low, choices)
        if low is not None and value < low or high is not None and value > high:
            return self._bad(full, f"{value!r} is out of range {low}..{high}", kind, default, low, choices)
        if choices and value not in choices:
            return self._bad(full, f"{value!r} is not one of {', '.join(map(repr, choices))}", kind, default, low,
                             choices)
        return value

    def unknown(self, data: dict, prefix: str, known: set[str]) -> None:
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.note(prefix + key, f"unknown key ({hint}known: {', '.join(sorted(known))})")

    def port(self, data: dict, prefix: str) -> str:
        port = self.value(data, "port", prefix, str)
        if "://" in port or port.startswith("/"):
            return port
        return os.path.normpath(self.base / port)  # no resolve(): the port may be a symlink to /dev/pts/N

    def config(self, data: dict) -> Config:
        self.unknown(data, "", {"library", "secret", "data_dir", "bookcase", "doors", "lockboard",
                                "rfid", "scanner", "pcsc", "policy", "session", "demo", "intent_socket", "ecard",
                                "screen", "mqtt", "content"})
        library = self.value(data, "library", "", str)
        secret = self.value(data, "secret", "", str)
        if len(secret) < 16:
            self.note("secret", "must be at least 16 characters (the library's patron-key secret)")
        bc = self.table(data, "bookcase")
        self.unknown(bc, "bookcase.", {"id", "name", "name_en", "latitude", "longitude", "address"})
        bookcase = Bookcase(id=self.value(bc, "id", "bookcase.", str), name=self.value(bc, "name", "bookcase.", str),
                            name_en=self.value(bc, "name_en", "bookcase.", str, ""),
                            latitude=self.value(bc, "latitude", "bookcase.", float, None, low=-90, high=90),
                            longitude=self.value(bc, "longitude", "bookcase.", float, None, low=-180, high=180),
                            address=self.value(bc, "address", "bookcase.", str, ""))
        if not valid_bookcase_id(bookcase.id):
            self.note("bookcase.id", f"{bookcase.id!r} is not a bookcase id: use {BOOKCASE_ID_RULE} "
                                           "(it names the bookcase in MQTT topics, files and the hostname)")
        for key in ("latitude", "longitude"):
            if getattr(bookcase, key) is not None and getattr(bookcase, key) != getattr(bookcase, key):
                self.note(f"bookcase.{key}", "nan is not a place: give degrees, as a map shows them")
        if (bookcase.latitude is None) != (bookcase.longitude is None):
            self.note("bookcase.latitude" if bookcase.latitude is None else "bookcase.longitude",
                            "missing: give both latitude and longitude (degrees, as a map shows them), or neither")
        data_dir = Path(self.value(data, "data_dir", "", str))
        if not data_dir.is_absolute():
            data_dir = Path(os.path.normpath(self.base / data_dir))
        sock = data.get("intent_socket")
        intent_socket = None
        if sock is not None:
            intent_socket = Path(self.value(data, "intent_socket", "", str))
            if not intent_socket.is_absolute():
                intent_socket = Path(os.path.normpath(self.base / intent_socket))
        doors = self.doors(data)
        lockboard = self.lockboard(self.table(data, "lockboard"))
        rfid = self.rfid(self.table(data, "rfid"))
        sc = self.table(data, "scanner")
        self.unknown(sc, "scanner.", {"port", "baudrate"})
        scanner = ScannerConfig(port=self.port(sc, "scanner."),
                                baudrate=self.value(sc, "baudrate", "scanner.", int, 9600, low=1200, high=921600))
        policy = self.policy(self.table(data, "policy", required=False))
        session = self.session(self.table(data, "session", required=False), doors)
        demo = self.table(data, "demo", required=False)
        self.unknown(demo, "demo.", {"seed"})
        return Config(path=self.path, library=library, bookcase=bookcase, data_dir=data_dir, secret=secret,
                      doors=doors, lockboard=lockboard, rfid=rfid, scanner=scanner, policy=policy,
                      session=session, seed_demo_data=self.value(demo, "seed", "demo.", bool, False),
                      intent_socket=intent_socket, pcsc=self.pcsc(self.table(data, "pcsc", required=False)),
                      ecard=self.ecard(self.table(data, "ecard", required=False)),
                      screen=self.screen(self.table(data, "screen", required=False)),
                      mqtt=self.mqtt(data, library, bookcase.id),
                      content=self.content(self.table(data, "content", required=False)))

    def doors(self, data: dict) -> tuple[Door, ...]:
        """The [[doors]] tables; a mistake names the door by its number ("door 6: lock"), or by its place in the
        file when the number itself is wrong ("the 6th [[doors]]")."""
        if "doors" not in data:
            self.note("doors", "missing: list the bookcase's doors as [[doors]] tables")
            return ()
        items = data["doors"]
        if not isinstance(items, list) or not items:
            self.note("doors", "expected at least one [[doors]] table")
            return ()
        doors: list[Door] = []
        for i, item in enumerate(items):
            number = item.get("number") if isinstance(item, dict) else None
            valid = isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= 255
            prefix = f"door {number}: " if valid else f"the {_ordinal(i + 1)} [[doors]]: "
            if not isinstance(item, dict):
                self.note(prefix.rstrip(": "), f"expected a table, got {_kind(item)}")
                continue
            self.unknown(item, prefix, {"number", "board", "lock", "reader", "capacity"})
            doors.append(Door(
                number=self.value(item, "number", prefix, int, low=1, high=255),
                board=self.value(item, "board", prefix, int, 0, low=0, high=15),
                lock=self.value(item, "lock", prefix, int, low=1, high=16),
                reader=self.value(item, "reader", prefix, int, low=0, high=254),
                capacity=self.value(item, "capacity", prefix, int, 80, low=1, high=2000),
            ))
        for i, door in enumerate(doors):
            if any(d.number == door.number for d in doors[:i]):
                self.note(f"the {_ordinal(i + 1)} [[doors]]: number", f"door {door.number} is listed twice")
        for field_name, what in (("reader", "reader address"), ("lock", "board and lock")):
            seen: dict[object, int] = {}
            for door in doors:
                value = door.reader if field_name == "reader" else (door.board, door.lock)
                if value in seen and seen[value] != door.number:
                    shown = value if field_name == "reader" else f"board {door.board} lock {door.lock}"
                    self.note(f"door {door.number}: {field_name}", f"{what} {shown} is already used by door "
                                                                   f"{seen[value]}")
                seen.setdefault(value, door.number)
        return tuple(doors)

    def lockboard(self, d: dict) -> LockBoardConfig:
        p = "lockboard."
        self.unknown(d, p, {"port", "baudrate", "lock_bit_unlocked", "sensor_bit_open", "unlock_pulse_ms",
                            "poll_interval_ms", "open_poll_interval_ms", "timeout_ms", "retries"})
        return LockBoardConfig(
            port=self.port(d, p),
            baudrate=self.value(d, "baudrate", p, int, 19200, low=1200, high=921600),
            lock_bit_unlocked=self.value(d, "lock_bit_unlocked", p, int, 1, choices=(0, 1)),
            sensor_bit_open=self.value(d, "sensor_bit_open", p, int, 1, choices=(0, 1)),
            unlock_pulse_ms=self.value(d, "unlock_pulse_ms", p, int, 500, low=50, high=10000),
            poll_interval_ms=self.value(d, "poll_interval_ms", p, int, 100, low=10, high=5000),
            open_poll_interval_ms=self.value(d, "open_poll_interval_ms", p, int, 20, low=10, high=5000),
            timeout_ms=self.value(d, "timeout_ms", p, int, 250, low=10, high=10000),
            retries=self.value(d, "retries", p, int, 2, low=0, high=10),
        )

    def rfid(self, d: dict) -> RfidConfig:
        p = "rfid."
        self.unknown(d, p, {"port", "baudrate", "timeout_ms", "retries"})
        return RfidConfig(
            port=self.port(d, p),
            baudrate=self.value(d, "baudrate", p, int, 38400, low=1200, high=921600),
            timeout_ms=self.value(d, "timeout_ms", p, int, 6000, low=50, high=60000),
            retries=self.value(d, "retries", p, int, 2, low=0, high=10),
        )

    def pcsc(self, d: dict) -> PcscConfig:
        p = "pcsc."
        self.unknown(d, p, {"enabled", "reader", "debounce_ms"})
        return PcscConfig(
            enabled=self.value(d, "enabled", p, bool, False),
            reader="" if d.get("reader") == "" else self.value(d, "reader", p, str, ""),
            debounce_ms=self.value(d, "debounce_ms", p, int, 1500, low=0, high=10000),
        )

    def policy(self, d: dict) -> PolicyConfig:
        p = "policy."
        self.unknown(d, p, {"default_limit", "loan_days", "classes", "offline_extra_loans"})
        classes = self.table(d, "classes", p, required=False)
        limits = {name: self.value(classes, name, p + "classes.", int, low=0, high=200) for name in classes}
        return PolicyConfig(
            default_limit=self.value(d, "default_limit", p, int, DEFAULT_LOAN_LIMIT, low=0, high=200),
            loan_days=self.value(d, "loan_days", p, int, DEFAULT_LOAN_DAYS, low=1, high=365),
            class_limits=limits,
            offline_extra_loans=self.value(d, "offline_extra_loans", p, int, 5, low=0, high=200),
        )

    def mqtt(self, data: dict, library: str, bookcase_id: str) -> MqttConfig | None:
        if "mqtt" not in data:
            return None
        d, p = self.table(data, "mqtt"), "mqtt."
        if "password" in d:
            self.note(p + "password", "never put a password in the config: write it to a file readable "
                                            "by the kiosk user only and give its path as password_file")
        self.unknown(d, p, {"host", "port", "topic_root", "username", "password_file", "tls", "tls_ca", "tls_cert",
                            "tls_key", "keepalive_s", "session_expiry_s", "inflight", "reconnect_min_s",
                            "reconnect_max_s", "max_payload_kb"})
        files = {k: self.file(d, k, p) for k in ("tls_ca", "tls_cert", "tls_key", "password_file")}
        tls = self.value(d, "tls", p, bool, any(files[k] for k in ("tls_ca", "tls_cert", "tls_key")))
        if (files["tls_cert"] is None) != (files["tls_key"] is None):
            self.note(p + ("tls_key" if files["tls_cert"] else "tls_cert"),
                            "missing: a client certificate needs both tls_cert and tls_key")
        if files["tls_cert"] and not tls:
            self.note(p + "tls", "is false, but tls_cert/tls_key are given: they work over TLS only")
        username = self.value(d, "username", p, str, None)
        password = None
        if files["password_file"] is not None:
            if username is None:
                self.note(p + "username", "missing: password_file is given, so the broker needs a username")
            password = files["password_file"].read_text(encoding="utf-8", errors="replace").strip()
            if not password:
                self.note(p + "password_file", f"{files['password_file']} is empty")
        root = self.value(d, "topic_root", p, str, f"citybook/v1/{library}/")
        if not root.endswith("/") or any(c in root for c in "+#\0") or "//" in root or root.startswith("/"):
            self.note(p + "topic_root", f"{root!r} must end with '/' and hold no wildcards, e.g. "
                                              f"'citybook/v1/{library}/'")
        low = self.value(d, "reconnect_min_s", p, float, 1.0, low=0.05, high=600)
        high = self.value(d, "reconnect_max_s", p, float, 60.0, low=0.05, high=3600)
        if high < low:
            self.note(p + "reconnect_max_s", f"{high} must not be shorter than reconnect_min_s ({low})")
        return MqttConfig(
            host=self.value(d, "host", p, str), port=self.value(d, "port", p, int, 8883 if tls else 1883, low=1,
                                                                 high=65535),
            topic_root=root, client_id=bookcase_id, username=username, password=password, tls=tls,
            tls_ca=files["tls_ca"], tls_cert=files["tls_cert"], tls_key=files["tls_key"],
            keepalive_s=self.value(d, "keepalive_s", p, int, 60, low=5, high=3600),
            session_expiry_s=self.value(d, "session_expiry_s", p, int, 7 * 24 * 3600, low=60, high=0xFFFFFFFE),
            inflight=self.value(d, "inflight", p, int, 32, low=1, high=1000),
            reconnect_min_s=low, reconnect_max_s=high,
            max_payload_kb=self.value(d, "max_payload_kb", p, int, 256, low=1, high=65536))

    def file(self, d: dict, key: str, prefix: str) -> Path | None:
        """An optional path to a readable file, relative to the config file's folder."""
        if key not in d:
            return None
        path = Path(self.value(d, key, prefix, str))
        path = path if path.is_absolute() else Path(os.path.normpath(self.base / path))
        if not path.is_file():
            self.note(prefix + key, f"{path} does not exist or is not a file")
            return None
        if not os.access(path, os.R_OK):
            self.note(prefix + key, f"{path} is not readable by this user")
            return None
        return path

    def ecard(self, d: dict) -> EcardConfig:
        p = "ecard."
        self.unknown(d, p, {"key", "key_file", "skew_s"})
        if "key" in d and "key_file" in d:
            self.note(p + "key_file", "give either key or key_file, not both")
        key = None
        if "key_file" in d:
            key_path = Path(self.value(d, "key_file", p, str))
            key_path = key_path if key_path.is_absolute() else self.base / key_path
            try:
                key = key_path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                self.note(p + "key_file", f"cannot read {key_path} ({exc.strerror})")
        elif "key" in d:
            key = self.value(d, "key", p, str)
        if key is not None and len(key) < 16:
            self.note(p + ("key_file" if "key_file" in d else "key"),
                            "the e-card key must be at least 16 characters")
        return EcardConfig(key=key, skew_s=self.value(d, "skew_s", p, int, 30, low=0, high=600))

    def screen(self, d: dict) -> ScreenConfig:
        p = "screen."
        self.unknown(d, p, {"width", "height", "fullscreen", "language", "voice", "on_hours", "power",
                            "power_on_command", "power_off_command", "wake_s", "video_volume", "reserve_url"})
        power = self.value(d, "power", p, str, "none", choices=("none", "command"))
        commands = {k: self.value(d, k, p, str, None) for k in ("power_on_command", "power_off_command")}
        if power == "command" and None in commands.values():
            self.note(p + "power", 'is "command": give both power_on_command and power_off_command')
        return ScreenConfig(
            on_hours=self.windows(d, "on_hours", p), power=power, **commands,
            wake_s=self.value(d, "wake_s", p, int, 120, low=5, high=86400),
            video_volume=self.value(d, "video_volume", p, float, 0.0, low=0.0, high=1.0),
            width=self.value(d, "width", p, int, 1080, low=320, high=7680),
            height=self.value(d, "height", p, int, 1920, low=320, high=7680),
            fullscreen=self.value(d, "fullscreen", p, bool, True),
            language=self.value(d, "language", p, str, "zh", choices=("zh", "en")),
            voice=self.value(d, "voice", p, bool, True),
            reserve_url=self.reserve_url(d, p),
        )

    def reserve_url(self, d: dict, p: str) -> str | None:
        url = self.value(d, "reserve_url", p, str, None)
        if url is not None and not re.fullmatch(r"https?://\S+", url):
            self.note(p + "reserve_url", f"{url!r} is not a web address (https://...) a phone can open")
        return url

    def windows(self, d: dict, key: str, prefix: str) -> tuple[str, ...]:
        value = self.value(d, key, prefix, list, [])
        for text in value:
            if not isinstance(text, str):
                self.note(prefix + key, f"expected time windows like \"07:00-22:00\", got {_kind(text)}")
                continue
            try:
                parse_window(text)
            except ValueError as exc:
                self.note(prefix + key, str(exc))
        return tuple(value)

    def content(self, d: dict) -> ContentConfig:
        p = "content."
        self.unknown(d, p, {"public_keys", "url", "check_interval_s", "max_kbps", "dir", "timezone"})
        keys = self.value(d, "public_keys", p, list, [])
        for key in keys:
            try:
                public_key(key if isinstance(key, str) else "")
            except ValueError as exc:
                self.note(p + "public_keys", f"{key!r} is {exc}")
        url = self.value(d, "url", p, str, None)
        if url is not None and not url.startswith(("http://", "https://")):
            self.note(p + "url", f"{url!r} is not an http:// or https:// address")
        if url is not None and not keys:
            self.note(p + "public_keys", "missing: content from url is refused unless it is signed by "
                                               "one of these keys")
        folder = self.value(d, "dir", p, str, None)
        tz = self.value(d, "timezone", p, str, "Asia/Shanghai")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            self.note(p + "timezone", f"{tz!r} is not a time zone name like 'Asia/Shanghai'")
        return ContentConfig(
            public_keys=tuple(keys), url=url if url is None or url.endswith("/") else url + "/",
            check_interval_s=self.value(d, "check_interval_s", p, int, 900, low=10, high=86400),
            max_kbps=self.value(d, "max_kbps", p, int, 2000, low=0, high=1_000_000),
            dir=None if folder is None else Path(os.path.normpath(self.base / folder)), timezone=tz)

    def session(self, d: dict, doors: tuple[Door, ...]) -> SessionConfig:
        p = "session."
        self.unknown(d, p, {"choose_door_timeout_s", "door_open_timeout_s", "door_open_prompt_s",
                            "door_open_alarm_s", "receipt_s", "inventory_max_rounds", "rescan_interval_s",
                            "default_door", "pin_timeout_s", "pin_tries", "restock_summary_s", "disk_low_mb"})
        default_door = self.value(d, "default_door", p, int, None, low=1, high=255)
        if default_door is not None and default_door not in {door.number for door in doors}:
            self.note(p + "default_door", f"door {default_door} is not one of the [[doors]]")
        prompt = self.value(d, "door_open_prompt_s", p, float, 30.0, low=1, high=3600)
        alarm = self.value(d, "door_open_alarm_s", p, float, 90.0, low=1, high=3600)
        if alarm < prompt:
            self.note(p + "door_open_alarm_s", f"{alarm} must not be shorter than door_open_prompt_s ({prompt})")
        return SessionConfig(
            choose_door_timeout_s=self.value(d, "choose_door_timeout_s", p, float, 30.0, low=1, high=600),
            door_open_timeout_s=self.value(d, "door_open_timeout_s", p, float, 20.0, low=1, high=600),
            door_open_prompt_s=prompt,
            door_open_alarm_s=alarm,
            receipt_s=self.value(d, "receipt_s", p, float, 8.0, low=0, high=600),
            inventory_max_rounds=self.value(d, "inventory_max_rounds", p, int, 6, low=2, high=50),
            rescan_interval_s=self.value(d, "rescan_interval_s", p, float, 10.0, low=0.1, high=3600),
            default_door=default_door,
            pin_timeout_s=self.value(d, "pin_timeout_s", p, float, 30.0, low=5, high=600),
            pin_tries=self.value(d, "pin_tries", p, int, 3, low=1, high=10),
            restock_summary_s=self.value(d, "restock_summary_s", p, float, 30.0, low=1, high=3600),
            disk_low_mb=self.value(d, "disk_low_mb", p, int, 100, low=1, high=100000),
        )


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _kind_name(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}[kind]
