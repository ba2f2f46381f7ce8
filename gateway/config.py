"""gateway.toml -> frozen dataclasses; every error names the file, the key and what is wrong (as kiosk/config.py).

Secrets never sit in the file itself: the broker's and the ILS's passwords, the journal's database password and
the library's patron-key secret each come from a file readable by the gateway's user only.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.config import ConfigError, MqttConfig, _Reader, read_toml

CHARSETS = ("utf-8", "gb18030", "gbk", "latin-1", "ascii")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class IlsConfig:
    """The library system's SIP2 server and the gateway's SIP2 account on it."""
    host: str
    port: int
    user: str                            # the SIP2 login (93 CN)
    password: str                        # from password_file (93 CO)
    location: str                        # the location code (93 CP, 09 AP): where the bookcases' books are
    institution: str = ""                # AO in every request
    charset: str = "utf-8"               # "gb18030" for ILSs that speak it; checksums sum the encoded bytes
    pool_size: int = 4                   # logged-in connections = SIP2 requests in parallel
    connect_timeout_s: float = 10.0
    timeout_s: float = 10.0              # an answer within this long, else the request counts as lost
    resends: int = 3                     # 97 "please resend" on a garbled answer, at most this often
    keepalive_s: float = 60.0            # SC status (99) on a connection idle this long
    error_detection: bool = True         # AY/AZ sequence numbers and checksums
    backoff_min_s: float = 1.0           # reconnecting to an ILS that is down: from this ...
    backoff_max_s: float = 60.0          # ... doubling up to this
    password_file: Path | None = None


@dataclass(frozen=True)
class JournalConfig:
    """SQLite file (one gateway process) or PostgreSQL (several)."""
    path: Path | None = None
    url: str | None = None               # postgresql://user@host/db, without a password
    password: str | None = None          # from password_file, for url

    @property
    def kind(self) -> str:
        return "postgresql" if self.url else "sqlite"

    def describe(self) -> str:
        if self.url:
            parts = urlsplit(self.url)
            return f"PostgreSQL {parts.hostname or 'localhost'}{parts.path}"
        return f"SQLite {self.path}"


@dataclass(frozen=True)
class PatronsConfig:
    secret: str                          # the library's patron-key secret: the same as the bookcases' `secret`
    snapshot: Path | None = None         # where `patrons import` writes the bookcases' snapshot (kiosk patrons load)
    refresh_interval_s: float = 86400.0  # every patron's status asked of the ILS (63) once per this long
    refresh_delay_s: float = 2.0         # after a transaction, the patron is asked this much later (coalesced)
    max_refresh_per_s: float = 5.0       # scheduled 63 requests per second at most (transactions come first)


@dataclass(frozen=True)
class OrderConfig:
    hold_s: float = 60.0                 # how long a later event waits for an earlier one of its item or bookcase
    lease_s: float = 120.0               # an event in "sending" whose gateway went silent this long is taken over


@dataclass(frozen=True)
class AcksConfig:
    batch: int = 200                     # results per ack message at most
    delay_ms: int = 100                  # results wait at most this long to share a message


@dataclass(frozen=True)
class ConsoleConfig:
    """The operators' console (gateway.console): where it listens, how its sessions behave."""
    listen: str = ""                     # "127.0.0.1:8080"; "" : no console in this process
    secure_cookies: bool = True          # cookies only over HTTPS (the library's reverse proxy terminates TLS)
    session_hours: float = 12.0          # a login lasts this long (a service-desk shift)
    timezone: str = "Asia/Shanghai"      # "today" and the charts' days, in the library's time
    login_attempts: int = 5              # wrong passwords per account or address in 5 minutes before a pause

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host or "127.0.0.1", int(port)


@dataclass(frozen=True)
class GatewayConfig:
    path: Path
    library: str
    id: str                              # this gateway process: unique per process sharing a journal
    mqtt: MqttConfig
    ils: IlsConfig
    journal: JournalConfig
    patrons: PatronsConfig
    order: OrderConfig = OrderConfig()
    acks: AcksConfig = AcksConfig()
    console: ConsoleConfig = ConsoleConfig()
    state_interval_s: float = 30.0       # the retained state message, at least this often


def load_gateway_config(path: Path | str) -> GatewayConfig:
    """Read and check a gateway config file. Raises ConfigError, never a bare traceback."""
    path = Path(path)
    return _GatewayReader(path).load(read_toml(path))


class _GatewayReader(_Reader):
    """The bookcase config's checked readers (value, table, unknown, file), for the gateway's tables."""

    def secret_file(self, d: dict, key: str, prefix: str, what: str) -> str:
        path = self.file(d, key, prefix)
        if path is None:                     # missing or unreadable: noted by file()
            return ""
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(prefix + key, f"cannot read {path} ({exc})") from None
        if not text:
            raise self.fail(prefix + key, f"{path} is empty: it should hold {what}")
        return text

    def path_value(self, d: dict, key: str, prefix: str, default: str | None = None) -> Path | None:
        text = self.value(d, key, prefix, str, default)
        if text is None:
            return None
        p = Path(text)
        return p if p.is_absolute() else Path(os.path.normpath(self.base / p))

    def config(self, data: dict) -> GatewayConfig:
        self.unknown(data, "", {"library", "gateway", "mqtt", "ils", "journal", "patrons", "order", "acks",
                                "console"})
        library = self.value(data, "library", "", str)
        if not _ID.fullmatch(library):
            raise self.fail("library", f"{library!r} cannot be an MQTT topic level: letters, digits, '-', '_', '.'")
        gw = self.table(data, "gateway", required=False)
        self.unknown(gw, "gateway.", {"id", "state_interval_s"})
        default_id = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname())[:64] or "gateway"
        gateway_id = self.value(gw, "id", "gateway.", str, default_id)
        if not _ID.fullmatch(gateway_id):
            raise self.fail("gateway.id", f"{gateway_id!r}: use letters, digits, '-', '_' and '.' only (at most 64)")
        return GatewayConfig(
            path=self.path, library=library, id=gateway_id,
            mqtt=self.gateway_mqtt(self.table(data, "mqtt"), library, gateway_id),
            ils=self.ils(self.table(data, "ils")),
            journal=self.journal(self.table(data, "journal")),
            patrons=self.patrons(self.table(data, "patrons")),
            order=self.order(self.table(data, "order", required=False)),
            acks=self.acks(self.table(data, "acks", required=False)),
            console=self.console(self.table(data, "console", required=False)),
            state_interval_s=self.value(gw, "state_interval_s", "gateway.", float, 30.0, low=1, high=3600))

    def gateway_mqtt(self, d: dict, library: str, gateway_id: str) -> MqttConfig:
        p = "mqtt."
        if "password" in d:
            raise self.fail(p + "password", "never put a password in the config: write it to a file readable "
                                            "by the gateway's user only and give its path as password_file")
        self.unknown(d, p, {"host", "port", "topic_root", "client_id", "username", "password_file", "tls", "tls_ca",
                            "tls_cert", "tls_key", "keepalive_s", "session_expiry_s", "inflight", "reconnect_min_s",
                            "reconnect_max_s", "max_payload_kb"})
        files = {k: self.file(d, k, p) for k in ("tls_ca", "tls_cert", "tls_key")}
        tls = self.value(d, "tls", p, bool, any(files.values()))
        if (files["tls_cert"] is None) != (files["tls_key"] is None):
            raise self.fail(p + ("tls_key" if files["tls_cert"] else "tls_cert"),
                            "missing: a client certificate needs both tls_cert and tls_key")
        if files["tls_cert"] and not tls:
            raise self.fail(p + "tls", "is false, but tls_cert/tls_key are given: they work over TLS only")
        username = self.value(d, "username", p, str, None)
        password = None
        if "password_file" in d:
            if username is None:
                raise self.fail(p + "username", "missing: password_file is given, so the broker needs a username")
            password = self.secret_file(d, "password_file", p, "the broker password of the gateway's user")
        root = self.value(d, "topic_root", p, str, f"citybook/v1/{library}/")
        if not root.endswith("/") or any(c in root for c in "+#\0") or "//" in root or root.startswith("/"):
            raise self.fail(p + "topic_root", f"{root!r} must end with '/' and hold no wildcards, e.g. "
                                              f"'citybook/v1/{library}/'")
        client_id = self.value(d, "client_id", p, str, f"citybook-gateway-{gateway_id}")
        low = self.value(d, "reconnect_min_s", p, float, 1.0, low=0.05, high=600)
        high = self.value(d, "reconnect_max_s", p, float, 30.0, low=0.05, high=3600)
        if high < low:
            raise self.fail(p + "reconnect_max_s", f"{high} must not be shorter than reconnect_min_s ({low})")
        return MqttConfig(
            host=self.value(d, "host", p, str),
            port=self.value(d, "port", p, int, 8883 if tls else 1883, low=1, high=65535),
            topic_root=root, client_id=client_id, username=username, password=password, tls=tls,
            tls_ca=files["tls_ca"], tls_cert=files["tls_cert"], tls_key=files["tls_key"],
            keepalive_s=self.value(d, "keepalive_s", p, int, 30, low=5, high=3600),
            session_expiry_s=self.value(d, "session_expiry_s", p, int, 7 * 24 * 3600, low=60, high=0xFFFFFFFE),
            inflight=self.value(d, "inflight", p, int, 256, low=1, high=10000),
            reconnect_min_s=low, reconnect_max_s=high,
            max_payload_kb=self.value(d, "max_payload_kb", p, int, 256, low=1, high=65536))

    def ils(self, d: dict) -> IlsConfig:
        p = "ils."
        if "password" in d:
            raise self.fail(p + "password", "never put the SIP2 password in the config: write it to a file "
                                            "readable by the gateway's user only and give its path as password_file")
        self.unknown(d, p, {"host", "port", "user", "password_file", "location", "institution", "charset",
                            "pool_size", "connect_timeout_s", "timeout_s", "resends", "keepalive_s",
                            "error_detection", "backoff_min_s", "backoff_max_s"})
        if "password_file" not in d:
            raise self.fail(p + "password_file", "missing: the file holding the SIP2 account's password")
        charset = self.value(d, "charset", p, str, "utf-8").lower().replace("_", "-")
        charset = {"utf8": "utf-8", "latin1": "latin-1", "iso-8859-1": "latin-1"}.get(charset, charset)
        if charset not in CHARSETS:
            raise self.fail(p + "charset", f"{charset!r} is not one of {', '.join(CHARSETS)} (ask the ILS's "
                                           "administrators which character set its SIP2 server speaks)")
        low = self.value(d, "backoff_min_s", p, float, 1.0, low=0.05, high=600)
        high = self.value(d, "backoff_max_s", p, float, 60.0, low=0.05, high=3600)
        if high < low:
            raise self.fail(p + "backoff_max_s", f"{high} must not be shorter than backoff_min_s ({low})")
        for key in ("user", "location"):
            text = d.get(key)
            if isinstance(text, str) and "|" in text:
                raise self.fail(p + key, "must not contain '|' (SIP2's field separator)")
        return IlsConfig(
            host=self.value(d, "host", p, str),
            port=self.value(d, "port", p, int, 6001, low=1, high=65535),
            user=self.value(d, "user", p, str),
            password=self.secret_file(d, "password_file", p, "the SIP2 account's password"),
            password_file=self.file(d, "password_file", p),
            location=self.value(d, "location", p, str),
            institution=self.value(d, "institution", p, str, "") if d.get("institution") != "" else "",
            charset=charset,
            pool_size=self.value(d, "pool_size", p, int, 4, low=1, high=64),
            connect_timeout_s=self.value(d, "connect_timeout_s", p, float, 10.0, low=0.1, high=300),
            timeout_s=self.value(d, "timeout_s", p, float, 10.0, low=0.1, high=300),
            resends=self.value(d, "resends", p, int, 3, low=0, high=10),
            keepalive_s=self.value(d, "keepalive_s", p, float, 60.0, low=1, high=3600),
            error_detection=self.value(d, "error_detection", p, bool, True),
            backoff_min_s=low, backoff_max_s=high)

    def journal(self, d: dict) -> JournalConfig:
        p = "journal."
        self.unknown(d, p, {"path", "url", "password_file"})
        if ("path" in d) == ("url" in d):
            raise self.fail(p + "path", "give exactly one of path (an SQLite file, one gateway process) or url "
                                        "(postgresql://user@host/database, for several)")
        if "path" in d:
            if "password_file" in d:
                raise self.fail(p + "password_file", "is for url (PostgreSQL) only; an SQLite journal has none")
            return JournalConfig(path=self.path_value(d, "path", p))
        url = self.value(d, "url", p, str)
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise self.fail(p + "url", f"{url!r} is not a postgresql:// address")
        if parts.password:
            raise self.fail(p + "url", "holds a password: take it out and give a password_file instead")
        if not parts.path.strip("/"):
            raise self.fail(p + "url", f"{url!r} names no database (postgresql://user@host/database)")
        password = None
        if "password_file" in d:
            password = self.secret_file(d, "password_file", p, "the journal database's password")
        return JournalConfig(url=url, password=password)

    def patrons(self, d: dict) -> PatronsConfig:
        p = "patrons."
        if "secret" in d:
            raise self.fail(p + "secret", "never put the patron-key secret in the config: write it to a file "
                                          "readable by the gateway's user only and give its path as secret_file")
        self.unknown(d, p, {"secret_file", "snapshot", "refresh_interval_s", "refresh_delay_s", "max_refresh_per_s"})
        if "secret_file" not in d:
            raise self.fail(p + "secret_file", "missing: the file holding the library's patron-key secret (the "
                                               "bookcases' `secret`)")
        secret = self.secret_file(d, "secret_file", p, "the patron-key secret")
        if len(secret) < 16:
            raise self.fail(p + "secret_file", "the secret must be at least 16 characters (the bookcases' `secret`)")
        return PatronsConfig(
            secret=secret, snapshot=self.path_value(d, "snapshot", p),
            refresh_interval_s=self.value(d, "refresh_interval_s", p, float, 86400.0, low=60, high=30 * 86400),
            refresh_delay_s=self.value(d, "refresh_delay_s", p, float, 2.0, low=0, high=3600),
            max_refresh_per_s=self.value(d, "max_refresh_per_s", p, float, 5.0, low=0.01, high=1000))

    def order(self, d: dict) -> OrderConfig:
        p = "order."
        self.unknown(d, p, {"hold_s", "lease_s"})
        return OrderConfig(hold_s=self.value(d, "hold_s", p, float, 60.0, low=0, high=86400),
                           lease_s=self.value(d, "lease_s", p, float, 120.0, low=5, high=86400))

    def console(self, d: dict) -> ConsoleConfig:
        p = "console."
        self.unknown(d, p, {"listen", "secure_cookies", "session_hours", "timezone", "login_attempts"})
        listen = self.value(d, "listen", p, str, "")
        if listen and not re.fullmatch(r"[A-Za-z0-9_.:\[\]-]*:\d{1,5}", listen):
            self.note(p + "listen", f"{listen!r} is not HOST:PORT, e.g. \"127.0.0.1:8080\"")
        tz = self.value(d, "timezone", p, str, "Asia/Shanghai")
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            self.note(p + "timezone", f"{tz!r} is not a time zone name like 'Asia/Shanghai'")
        return ConsoleConfig(listen=listen, secure_cookies=self.value(d, "secure_cookies", p, bool, True),
                             session_hours=self.value(d, "session_hours", p, float, 12.0, low=0.1, high=24 * 30),
                             timezone=tz, login_attempts=self.value(d, "login_attempts", p, int, 5, low=1, high=100))

    def acks(self, d: dict) -> AcksConfig:
        p = "acks."
        self.unknown(d, p, {"batch", "delay_ms"})
        return AcksConfig(batch=self.value(d, "batch", p, int, 200, low=1, high=1000),
                          delay_ms=self.value(d, "delay_ms", p, int, 100, low=0, high=60000))


__all__ = ["AcksConfig", "ConfigError", "ConsoleConfig", "GatewayConfig", "IlsConfig", "JournalConfig", "OrderConfig",
           "PatronsConfig", "load_gateway_config"]
