"""What the flow keeps in the ledger: a session's record, a closed session's settlement, the Ledger protocol."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Protocol

from kiosk.core import events as ev
from kiosk.core.inventory import Holding
from kiosk.core.policy import Patron

# Session kinds: a patron borrowing and returning, a return without a card, a door opened without an
# unlock, the first count of a compartment, and staff restocking.
PATRON, RETURN, FORCED, STOCKTAKE, RESTOCK_KIND = "patron", "return", "forced", "stocktake", "restock"


@dataclass(frozen=True)
class SessionRecord:
    """A session as the ledger keeps it; ``before`` is the compartment's inventory when it opened."""
    id: str
    kind: str
    door: int
    state: str
    before: dict[str, Holding]
    opened_at: str
    patron_key: str | None = None
    card_hint: str = ""
    may_borrow: int = 0
    offline: bool = False

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the session opened by the wall clock; None if ``opened_at`` cannot be read."""
        try:
            return (now - datetime.fromisoformat(self.opened_at)).total_seconds()
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Settlement:
    """Everything one closed session changes, committed by the ledger in one transaction."""
    session: SessionRecord
    closed_at: str
    due_at: str
    loans: tuple[Holding, ...]
    returns: tuple[Holding, ...]
    missing: tuple[Holding, ...]
    after: dict[str, Holding]
    tags: dict[str, ev.TagInfo]
    events: tuple[dict, ...]
    summary: dict


class Ledger(Protocol):
    """What the flow needs from storage (kiosk.store implements it)."""

    def patron(self, key: str) -> Patron | None: ...
    def open_loan_count(self, key: str) -> int: ...
    def offline_loan_count(self, key: str) -> int: ...
    def staff_pin_hash(self, key: str) -> str | None: ...
    def ecard_seen(self, token_id: str, expires_at: int, now: int) -> bool: ...
    def door_holdings(self, door: int) -> dict[str, Holding]: ...
    def known_uids(self) -> frozenset[str]: ...
    def item_ids(self, uids: Iterable[str]) -> dict[str, str | None]: ...
    def titles(self, item_ids: Iterable[str]) -> dict[str, str]: ...
    def open_session(self, record: SessionRecord, events: list[dict]) -> None: ...
    def set_session_state(self, session_id: str, state: str) -> None: ...
    def open_sessions(self) -> list[SessionRecord]: ...
    def doors_never_counted(self, doors: Iterable[int]) -> list[int]: ...
    def settle(self, settlement: Settlement) -> None: ...
    def record_events(self, events: list[dict]) -> None: ...
