"""The gateway's journal: every bookcase event, its state on the way to the ILS, the review queue, the patron map.

``open_journal(config.journal)`` opens (and migrates) SQLite or PostgreSQL; both behave the same (one set of
queries, see backends.py). Idempotent on event id; see core.py for the states.
"""

from __future__ import annotations

from gateway.config import JournalConfig
from gateway.journal.backends import Backend, JournalError, PostgresBackend, SqliteBackend
from gateway.journal.console import ConsoleJournal
from gateway.journal.core import (DONE, PENDING, TRANSACTIONS, Claimed, Incoming, Neighbour, Outcome, Recorded,
                                  now_iso)
from gateway.journal.migrations import migrate
from gateway.journal.patrons import ImportCounts, PatronJournal, PatronRow
from gateway.journal.review import ReviewError, ReviewJournal


class Journal(PatronJournal, ReviewJournal, ConsoleJournal):
    """The journal's whole interface (events, appliers' claims, patrons, review, acks, status, the console's)."""


def open_journal(cfg: JournalConfig) -> Journal:
    """Open the journal the config names and bring its schema up to date. Raises JournalError."""
    backend: Backend = PostgresBackend(cfg.url, cfg.password) if cfg.url else SqliteBackend(cfg.path)
    try:
        migrate(backend)
    except Exception:
        backend.close()
        raise
    return Journal(backend)


__all__ = ["DONE", "PENDING", "TRANSACTIONS", "Claimed", "ImportCounts", "Incoming", "Journal", "JournalError",
           "Neighbour", "Outcome", "PatronRow", "Recorded", "ReviewError", "now_iso", "open_journal"]
