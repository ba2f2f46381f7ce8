"""Which screen shows which moment: the one place that maps flow states (and screen pages) to screens."""

from __future__ import annotations

from kiosk.core.snapshot import Snapshot
from kiosk.ui.screens.attract import Attract
from kiosk.ui.screens.base import Screen
from kiosk.ui.screens.find import Find
from kiosk.ui.screens.pages import Help
from kiosk.ui.screens.service import Fallback, OutOfService, Starting
from kiosk.ui.screens.session import Choosing, DoorOpen, Identifying, ReceiptScreen, Refused, Scanning
from kiosk.ui.screens.staff import DiagnosticsScreen, Restock, StaffPin

IDLE_PAGES = ("find", "help")              # pages a patron opens from the attract screen
STAFF_STATES = ("staff_pin", "staff_restock")


def make_screens() -> dict[str, Screen]:
    """One instance of every screen, by name."""
    screens = (Starting(), Attract(), Find(), Help(), Identifying(), Choosing(), Refused(), DoorOpen(), Scanning(),
               ReceiptScreen(), OutOfService(), StaffPin(), Restock(), DiagnosticsScreen(), Fallback())
    return {s.name: s for s in screens}


# Flow state -> screen name (kiosk.core.flow's state names; "identifying" when the core checks a card).
STATE_SCREENS = {
    "starting": "starting",
    "idle": "attract",
    "identifying": "identifying",
    "choosing": "choosing",
    "refused": "refused",
    "door_open": "door_open",
    "scanning": "scanning",
    "receipt": "receipt",
    "staff_pin": "staff_pin",
    "staff_restock": "staff_restock",
}


def screen_name(snap: Snapshot, page: str | None) -> str:
    """The screen for this snapshot and the page the patron or staff opened on it."""
    if snap.state == "idle":
        if snap.out_of_service:
            return "out_of_service"
        if page in IDLE_PAGES:
            return page
    if snap.state == "staff_restock" and page == "diagnostics":
        return "diagnostics"
    return STATE_SCREENS.get(snap.state, "fallback")
