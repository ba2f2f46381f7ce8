"""What the flow knows of each door and of each open session at run time (the persisted part is the record)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kiosk.core.records import SessionRecord


@dataclass
class Door:
    """A door as the lock board last reported it. ``open`` is None while its state is unknown: before the
    board first answers, and whenever it stops answering or an unlock's answer is lost."""
    number: int
    open: bool | None = None          # None: unknown
    locked: bool | None = None
    faults: dict[str, str] = field(default_factory=dict)   # device -> message

    @property
    def in_service(self) -> bool:
        return not self.faults and self.open is not None


@dataclass
class LiveSession:
    """Runtime state of an open session (the persisted part is ``record``)."""
    record: SessionRecord
    started: float
    opened: float | None = None       # monotonic time the door was seen open
    prompted: bool = False
    alarmed: bool = False
    scanning: bool = False
    scan_due: float | None = None
    scan_failures: int = 0
    door_events: int = 0              # bumps whenever the door opens: a scan started before is stale
    scan_epoch: int = 0
    lost_sight: bool = False          # the door's state was lost after the unlock, before it was seen open
