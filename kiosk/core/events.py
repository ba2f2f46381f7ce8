"""Events the core loop consumes and effects it asks the shell to carry out; all immutable."""

from __future__ import annotations

from dataclasses import dataclass, field


# --- events: posted to the core loop by drivers, workers, intents and the clock ---------------------

@dataclass(frozen=True)
class CardPresented:
    """Someone identified themselves: a card number from the scanner, a card UID from the PC/SC reader
    ("pcsc"), or an e-card token from the scanner ("ecard")."""
    number: str
    source: str = "scanner"


@dataclass(frozen=True)
class PinEntered:
    """A staff PIN, typed on the keypad or sent on the scanner line after a staff card."""
    pin: str


@dataclass(frozen=True)
class ReturnStart:
    """Intent: return books without a card (the attract screen's Return books button)."""


@dataclass(frozen=True)
class BadScan:
    """The scanner sent a line that is not a card number."""
    reason: str


@dataclass(frozen=True)
class DoorChosen:
    """Intent: the patron picked a door (touch screen or the intent socket)."""
    door: int


@dataclass(frozen=True)
class Cancel:
    """Intent: the patron walked away from the door choice or dismissed a screen."""


@dataclass(frozen=True)
class DoorSensed:
    """The lock board reported a door's state (first read, or a change)."""
    door: int
    open: bool
    locked: bool


@dataclass(frozen=True)
class UnlockResult:
    door: int
    session_id: str
    error: str | None = None


@dataclass(frozen=True)
class TagInfo:
    """What a tag's memory said: the item id, or why it could not be read."""
    item_id: str | None
    usage: int | None = None
    error: str | None = None
    readable: bool = True      # False: the memory read failed (try again later), not a bad tag


@dataclass(frozen=True)
class ScanResult:
    door: int
    session_id: str
    present: frozenset[str]
    uncertain: frozenset[str]
    rounds: int
    agreed: bool
    tags: dict[str, TagInfo] = field(default_factory=dict)
    attempt: int = 0           # the Scan's: a result of a count the flow no longer waits for is ignored


@dataclass(frozen=True)
class ScanFailed:
    door: int
    session_id: str
    error: str
    attempt: int = 0


@dataclass(frozen=True)
class DeviceLink:
    """A device's link went down or came back; doors lists the doors that depend on it."""
    device: str
    up: bool
    message: str
    doors: tuple[int, ...] = ()


@dataclass(frozen=True)
class SyncState:
    """The fleet link: whether the bookcase is online, and when it last heard from the library."""
    online: bool
    last_sync: str | None = None


@dataclass(frozen=True)
class DiskSpace:
    """Free space on the data partition, checked now and then by the shell."""
    free_mb: int
    low: bool


@dataclass(frozen=True)
class Tick:
    """The clock: lets the flow fire its timeouts."""


# --- effects: what the flow asks the shell to do --------------------------------------------------

@dataclass(frozen=True)
class Unlock:
    door: int
    session_id: str


@dataclass(frozen=True)
class Scan:
    door: int
    session_id: str
    known: frozenset[str]      # UIDs whose tag memory is already known: no need to read them again
    attempt: int = 0           # echoed in the ScanResult or ScanFailed


@dataclass(frozen=True)
class ReportDoors:
    """The flow lost these doors' state: the lock board must report them again, changed or not, from a reading
    begun after this request (an older reading may predate what made the state unknown)."""
    doors: tuple[int, ...]


Event = (CardPresented | PinEntered | ReturnStart | BadScan | DoorChosen | Cancel | DoorSensed | UnlockResult
         | ScanResult | ScanFailed | DeviceLink | SyncState | DiskSpace | Tick)
Effect = Unlock | Scan | ReportDoors
