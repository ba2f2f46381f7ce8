"""The journal's two databases behind one small interface: a connection per thread, transactions, SQL dialect.

The journal's queries are written once, for SQLite, with ``?`` placeholders; a backend runs them on its database.
``SqliteBackend``: one file, WAL, ``synchronous=FULL``, opened as the bookcase opens its own (kiosk.store.db),
write transactions ``BEGIN IMMEDIATE`` (one writer at a time: the gateway is one process). ``PostgresBackend``
(psycopg 3): several gateway processes share it; ``for_update`` gives row locks (``FOR UPDATE SKIP LOCKED``) where
SQLite's single writer needs none, and ``?`` becomes ``%s``.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from kiosk.store.db import BUSY_S, _use_wal

LOGGER = logging.getLogger(__name__)


class JournalError(Exception):
    """The journal cannot be used; the message says why in an operator's words."""


class Tx(Protocol):
    def execute(self, sql: str, params: tuple | list = ()) -> Any: ...


class Backend:
    """A connection per thread (SQLite and psycopg connections must not be shared across threads)."""

    kind = ""
    serial = ""              # an auto-numbered primary key column
    real = ""                # a floating point column
    skip_locked = ""         # appended to a SELECT that claims rows
    transient: tuple[type[BaseException], ...] = ()   # errors after which the same transaction may be tried again

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def connect(self) -> Any:
        raise NotImplementedError

    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            try:
                conn.close()
            except Exception as exc:           # closing at shutdown: nothing more to do about it
                LOGGER.debug("journal: closing a connection: %s", exc)
        self._local = threading.local()

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        raise NotImplementedError

    def migration_lock(self, tx: Tx) -> None:
        """Called first in the migrating transaction: another process migrating waits here."""


class SqliteBackend(Backend):
    kind = "sqlite"
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    real = "REAL"
    transient = (sqlite3.OperationalError,)     # "database is locked" after the busy timeout

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def describe(self) -> str:
        return f"SQLite journal {self.path}"

    def connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=BUSY_S)
            _use_wal(conn)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path}: cannot open the gateway's journal ({exc})") from None
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot create the journal's folder ({exc.strerror})") from None
        return conn

    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[Tx]:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")


class _PgTx:
    """psycopg's connection with the journal's ``?`` placeholders."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), tuple(params))


class PostgresBackend(Backend):
    kind = "postgresql"
    serial = "BIGSERIAL PRIMARY KEY"
    real = "DOUBLE PRECISION"
    skip_locked = " FOR UPDATE OF e SKIP LOCKED"

    def __init__(self, url: str, password: str | None = None) -> None:
        super().__init__()
        try:
            import psycopg     # only a gateway with a PostgreSQL journal needs libpq
        except ImportError as exc:
            raise JournalError(f"the PostgreSQL journal needs psycopg and libpq (apt-get install libpq5): {exc}") \
                from None
        self.psycopg = psycopg
        # A deadlock or serialization failure between two gateways, or a dropped connection: try again.
        self.transient = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure,
                          psycopg.OperationalError)
        self.url = url
        self.password = password

    def describe(self) -> str:
        from urllib.parse import urlsplit
        parts = urlsplit(self.url)
        return f"PostgreSQL journal {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"

    def connect(self) -> Any:
        kwargs = {"password": self.password} if self.password else {}
        try:
            return self.psycopg.connect(self.url, autocommit=True, connect_timeout=10, **kwargs)
        except self.psycopg.Error as exc:
            raise JournalError(f"{self.describe()}: cannot connect ({str(exc).strip()})") from None

    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        conn = self._conn()
        if conn.closed or conn.broken:
            self._local.conn = None
            conn = self._conn()
        with conn.transaction():
            yield _PgTx(conn)

    read = tx

    def migration_lock(self, tx: Tx) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(726017)")    # any constant shared by every gateway process
