"""Opening the bookcase database: WAL, synchronous=FULL, explicit transactions, versioned migrations."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from kiosk.store.migrations import MIGRATIONS

LOGGER = logging.getLogger(__name__)


class StoreError(Exception):
    """The database cannot be used; the message says why in an operator's words."""


BUSY_S = 10.0


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting out other connections doing the same to a new file.

    Changing the journal mode upgrades a read lock to an exclusive one. When two connections try at once,
    SQLite answers "database is locked" at once instead of calling the busy handler (waiting could
    deadlock), so the retry has to be ours.
    """
    deadline = time.monotonic() + BUSY_S
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def connect(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly what we say.
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_S)
        _use_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=10000")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open the bookcase database ({exc})") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the data folder ({exc.strerror})") from None
    db = sqlite_utils.Database(conn)
    migrate(db, path)
    return db


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(db: sqlite_utils.Database) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def migrate(db: sqlite_utils.Database, path: Path | str = "") -> None:
    """Apply every migration newer than the database, each in its own transaction."""
    current = schema_version(db)
    latest = len(MIGRATIONS)
    if current > latest:
        raise StoreError(f"{path}: the database is schema version {current}, newer than this software "
                         f"understands ({latest}); install the newer kiosk version or restore a backup")
    for version in range(current + 1, latest + 1):
        with transaction(db) as conn:
            # Another process (the daemon and `kiosk ledger`, say) may have migrated it while we waited
            # for the write lock: look again under the lock.
            if schema_version(db) >= version:
                continue
            MIGRATIONS[version - 1](db)
            conn.execute(f"PRAGMA user_version = {version}")
        LOGGER.info("database %s migrated to schema version %d", path, version)
