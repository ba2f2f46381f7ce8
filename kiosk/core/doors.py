"""Door tracking: what the flow knows of each door and of each open session, and how it takes the lock board's
reports (``DoorTracking``, part of kiosk.core.flow.Flow).

A door is ``open``, ``closed`` or ``unknown``. It is unknown until the lock board first reports it, and again
whenever the board stops answering, its line is unplugged, or an unlock's answer is lost: the door may have
opened and closed unseen meanwhile. Nothing is decided on an unknown door — no count, no timeout, no new
session — until the board reports it again, from a reading begun after its state was lost (docs/design.md §4).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Iterable

from kiosk.core import events as ev
from kiosk.core.records import FORCED, SessionRecord
from kiosk.core.snapshot import CHOOSING, DOOR_OPEN

LOGGER = logging.getLogger(__name__)

OPEN, CLOSED, UNKNOWN = "open", "closed", "unknown"

# Session states as persisted: the unlock is asked for, the board confirmed it, the door was seen open, the
# compartment is being counted, settled.
S_UNLOCKING, S_UNLOCKED, S_OPEN, S_SCANNING, S_DONE = "unlocking", "unlocked", "open", "scanning", "done"
NOT_YET_OPEN = (S_UNLOCKING, S_UNLOCKED)

# Door faults: the lock board's link or the board itself is down (its readings are not trusted until it is
# back), or an unlock went unanswered (the door is out of service until the board reports it again).
LINK_FAULT, UNLOCK_FAULT = "lockboard", "unlock"


@dataclass
class Door:
    """A door as the lock board last reported it."""
    number: int
    state: str = UNKNOWN
    locked: bool | None = None        # None while the state is unknown
    faults: dict[str, str] = field(default_factory=dict)   # device (or LINK_FAULT, UNLOCK_FAULT) -> message

    @property
    def known(self) -> bool:
        return self.state != UNKNOWN

    @property
    def in_service(self) -> bool:
        return not self.faults and self.known

    def sense(self, is_open: bool, locked: bool) -> str:
        """The board reported the door; returns the state it had before."""
        previous = self.state
        self.state, self.locked = (OPEN if is_open else CLOSED), locked
        return previous

    def lose(self) -> bool:
        """The board can no longer tell: the door's state is unknown. True if it was known."""
        was_known = self.known
        self.state, self.locked = UNKNOWN, None
        return was_known


@dataclass
class LiveSession:
    """Runtime state of an open session (the persisted part is ``record``)."""
    record: SessionRecord
    started: float                    # monotonic time the door_open timeout counts from
    opened: float | None = None       # monotonic time the door was seen open
    prompted: bool = False
    alarmed: bool = False
    scanning: bool = False
    scan_due: float | None = None
    scan_failures: int = 0
    scan_attempt: int = 0             # the latest count asked for: a result of an earlier one is stale
    unseen: bool = False              # the door's state was lost after the unlock, before it was seen open: it
                                      # may have been opened meanwhile, so it is counted once known closed and locked


def resume_plan(record: SessionRecord, age_s: float | None, bound_s: float) -> str:
    """What a restart does with an open session whose door was never seen open.

    ``"unlock"``: the unlock was never confirmed and the session began less than ``bound_s`` ago — the
    patron is likely still there and still authorised, so the door unlocks again at once. ``"wait"``: the
    board confirmed the unlock less than ``bound_s`` ago — the door is unlocked, wait for it as before.
    ``"expire"``: older (or of unknown age: a wall clock that moved back) — the patron has likely gone; the
    session ends as soon as its door is known closed, counting whatever did leave to its patron.
    """
    if age_s is None or not 0 <= age_s < bound_s:
        return "expire"
    return "unlock" if record.state == S_UNLOCKING else "wait"


class DoorTracking:
    """The flow's handling of what the lock board says (kiosk.core.flow.Flow is built on it): unlock results,
    door readings, doors opened without an unlock, and doors whose state is lost. It uses the flow's doors,
    live sessions, screen state and ledger helpers."""

    def _handle_UnlockResult(self, event: ev.UnlockResult) -> list[ev.Effect]:
        live = self.live.get(event.session_id)
        if live is None:
            return []
        if event.error is None:
            if live.record.state == S_UNLOCKING:
                # The board confirmed it: after a restart the session waits for this door, it does not unlock it
                # again. (Not recorded, the restart unlocks again: harmless for a door already unlocked.)
                try:
                    self._persist_state(live, S_UNLOCKED)
                except Exception as exc:
                    LOGGER.error("door %d: cannot record that the unlock was confirmed (%s)", event.door, exc)
            return []
        LOGGER.error("door %d: unlock failed: %s", event.door, event.error)
        self._alarm("hardware_fault", event.door, device="lockboard", message=event.error)
        self.doors[event.door].faults[UNLOCK_FAULT] = event.error
        if self.current == event.session_id:
            # The screen says the door did not answer and is being checked; another door may be chosen.
            self.current, self.current_door = None, None
            self._enter(CHOOSING, self.choose_door_timeout_s, reason="door_failed")
        # The unlock may have reached the board and only its answer been lost: the door may be open. Its state
        # is unknown until the board reports it again, and the compartment is counted once it is known closed.
        return self._lose([event.door])

    def _handle_DoorSensed(self, event: ev.DoorSensed) -> list[ev.Effect]:
        door = self.doors.get(event.door)
        if door is None:
            return []
        if LINK_FAULT in door.faults:
            # Read before the board's link went down; once it is back, the board reports every door again.
            LOGGER.debug("door %d: a reading from a lock board that is down, ignored", event.door)
            return []
        previous = door.sense(event.open, event.locked)
        if UNLOCK_FAULT in door.faults:
            LOGGER.info("door %d: the lock board reports it again after the unanswered unlock", event.door)
            door.faults.pop(UNLOCK_FAULT)
            self._event({"type": "alarm_cleared", "alarm": "hardware_fault", "door": event.door,
                         "device": "lockboard"})
            self._check_service()
        live = self.session_for_door(event.door)
        if event.open:
            if previous == OPEN:
                return []
            if live is None:
                return self._forced(event.door)
            live.scanning, live.unseen = False, False        # a count begun before the door opened is stale
            if live.opened is None:
                live.opened = self.clock()
            if live.record.state != S_OPEN:
                self._persist_state(live, S_OPEN)
            LOGGER.info("door %d: open%s", event.door, "" if previous == CLOSED else " (reported again)")
            if live.record.id == self.current:
                self._enter(DOOR_OPEN, None, reason=self.reason)
            return []
        if live is None:
            return []
        if live.unseen and event.locked:
            # Its state was lost after the unlock, before it was seen open: it may have been opened and closed
            # unseen, and now it is closed and locked, so it is counted at once. (A door still unlocked may yet
            # be opened: the door_open timeout waits for it.)
            live.unseen = False
            LOGGER.info("door %d: closed and locked after its state was lost; taking the inventory", event.door)
            return self._request_scan(live)
        if previous != CLOSED and (previous == OPEN or live.record.state in (S_OPEN, S_SCANNING)):
            LOGGER.info("door %d: closed; taking the inventory", event.door)
            if live.alarmed:
                live.alarmed = False
                self._event({"type": "alarm_cleared", "alarm": "door_held_open", "door": event.door,
                             "session": live.record.id})
            return self._request_scan(live)
        return []

    def _forced(self, door: int) -> list[ev.Effect]:
        # Invariant 7: a door that opens without an unlock is an alarm, and what leaves is missing.
        record = SessionRecord(id=str(uuid.uuid4()), kind=FORCED, door=door, state=S_OPEN,
                               before=self.ledger.door_holdings(door), opened_at=self._iso())
        LOGGER.error("door %d: opened without an unlock command — door_forced alarm (session %s)",
                     door, record.id[:8])
        self.ledger.open_session(record, [
            {"type": "session_opened", "session": record.id, "door": door, "patron": None, "kind": FORCED},
            {"type": "alarm", "alarm": "door_forced", "door": door, "session": record.id}])
        self.live[record.id] = LiveSession(record, started=self.clock(), opened=self.clock())
        return []

    def _lose(self, doors: Iterable[int]) -> list[ev.Effect]:
        """The lock board can no longer tell these doors' state: unknown until it reports them again, and it is
        asked to (ReportDoors), from a reading begun after now."""
        doors = tuple(doors)
        for n in doors:
            if self.doors[n].lose():
                LOGGER.warning("door %d: its state is unknown until the lock board reports it again", n)
            live = self.session_for_door(n)
            if live is not None:
                live.scanning = False                  # what a running count sees may be out of date
                if live.opened is None:
                    live.unseen = True
        return [ev.ReportDoors(doors)] if doors else []
