"""Loading the demo catalogue and reader cards (kiosk.demodata) into a bookcase's database, once."""

from __future__ import annotations

import logging

from kiosk.config import Config
from kiosk.core.policy import card_hint, patron_key
from kiosk.core.staff import hash_pin
from kiosk.demodata import DEMO_STAFF_CARD, DEMO_STAFF_PIN, MAX_DEMO_ITEMS, demo_books, demo_patrons, \
    library_books
from kiosk.store.ledger import Store

LOGGER = logging.getLogger(__name__)

SEED_VERSION = "4"
MAX_BOOKS_PER_DOOR = 300


def seed_demo(store: Store, config: Config) -> bool:
    """Seed catalogue and patrons unless this database already has this seed. Returns True if it seeded."""
    row = store.db.execute("SELECT value FROM meta WHERE key = 'demo_seed'").fetchone()
    if row and row[0] == SEED_VERSION:
        return False
    doors = [d.number for d in config.doors]
    per_door = min(MAX_BOOKS_PER_DOOR, MAX_DEMO_ITEMS // len(doors))
    books = demo_books(doors, per_door=per_door)
    store.upsert_catalogue({"item_id": b.item_id, "title": b.title, "author": b.author, "isbn": b.isbn, "clc": b.clc}
                           for b in books + library_books())
    store.upsert_patrons({"patron_key": patron_key(config.secret, p.card_number), "patron_class": p.patron_class,
                          "status": p.status, "loans_elsewhere": p.loans_elsewhere,
                          "card_hint": card_hint(p.card_number)} for p in demo_patrons())
    store.set_staff(patron_key(config.secret, DEMO_STAFF_CARD), hash_pin(DEMO_STAFF_PIN), "demo staff",
                    card_hint(DEMO_STAFF_CARD))      # `kiosk staff list` names it ****BB01
    store.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('demo_seed', ?)", (SEED_VERSION,))
    LOGGER.info("demo data loaded: %d catalogue records, %d reader cards", len(books), len(demo_patrons()))
    return True
