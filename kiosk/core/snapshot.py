"""Immutable views of the flow for the screen, the intent socket and the logs (docs/design.md §3: the UI redraws
from these and never reads the flow's live state)."""

from __future__ import annotations

from dataclasses import dataclass

# What a snapshot's ``state`` can be: the patron-facing states, then the staff-facing ones (kiosk.core.flow).
IDLE, CHOOSING, REFUSED, DOOR_OPEN, SCANNING, RECEIPT = (
    "idle", "choosing", "refused", "door_open", "scanning", "receipt")
STAFF_PIN, RESTOCK = "staff_pin", "staff_restock"


@dataclass(frozen=True)
class Receipt:
    borrowed: tuple[tuple[str, str, str], ...] = ()    # (item id, title, due date)
    returned: tuple[tuple[str, str], ...] = ()         # (item id, title)
    uncertain: int = 0
    pending: bool = False                              # the scan failed; settled when the reader is back


@dataclass(frozen=True)
class StaffView:
    """What the staff screens show: PIN entry, then a restock's doors and what each count found."""
    pin_digits: int = 0                                   # digits typed so far
    pin_error: bool = False                               # the last PIN was wrong
    doors_open: tuple[int, ...] = ()                      # restock: doors still open
    counting: tuple[int, ...] = ()                        # restock: doors whose inventory is running
    checking: tuple[int, ...] = ()                        # restock: doors whose state the lock board cannot tell
    summary: tuple[tuple[int, int, int], ...] = ()        # restock: (door, books added, books removed)


@dataclass(frozen=True)
class Diagnostics:
    """The bookcase's health, for the staff diagnostics screen (filled in by the shell, not the flow)."""
    version: str
    bookcase_id: str
    bookcase_name: str
    devices: tuple[tuple[str, bool, str], ...] = ()      # (device, link up, last message)
    outbox_depth: int = 0
    online: bool = False
    last_sync: str | None = None
    disk_free_mb: int | None = None
    content_version: int | None = None                   # the large screen's content; None: no [content] keys
    content_result: str | None = None                    # the last update attempt (kiosk.sync.content outcomes)


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of the flow for the UI and the logs."""
    state: str
    door: int | None = None
    reason: str | None = None
    may_borrow: int = 0
    limit: int = 0
    receipt: Receipt | None = None
    doors_in_service: tuple[int, ...] = ()
    doors_out_of_service: tuple[int, ...] = ()
    out_of_service: bool = False
    until: float | None = None          # time.monotonic() when the current screen times out (countdowns)
    held_open: bool = False             # the patron's door has been open too long: ask them to close it
    offline: bool = False               # the bookcase has no link to the library right now
    kind: str | None = None             # the current session's kind: patron, return, restock
    staff: StaffView | None = None
    # Doors whose state is being checked: a session waits on them, and the lock board cannot tell whether they
    # are open (it stopped answering, was unplugged, or an unlock's answer was lost). Nothing is counted and
    # nobody else may use them until the board reports them again.
    checking: tuple[int, ...] = ()
    diagnostics: Diagnostics | None = None
