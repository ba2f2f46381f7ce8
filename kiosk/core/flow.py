"""The session state machine: idle -> choosing -> door_open -> scanning -> receipt (docs/design.md §4).

The flow is driven by events (kiosk.core.events) on the core loop's thread and answers with effects
(unlock a door, scan a compartment) for the shell to carry out. It reads and writes the bookcase's
records only through the Ledger protocol below, which the store implements; it never touches a
device, the network or the screen, and never blocks on any of them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable, Iterable

from kiosk import clock as kiosk_clock
from kiosk.core import ecard
from kiosk.core import events as ev
from kiosk.core.doors import (CLOSED, LINK_FAULT, NOT_YET_OPEN, OPEN, S_OPEN, S_SCANNING, S_UNLOCKING, Door,
                               DoorTracking, LiveSession, resume_plan)
from kiosk.core.policy import Decision, LoanPolicy, Patron, card_hint, patron_key
from kiosk.core.records import PATRON, RESTOCK_KIND, RETURN, STOCKTAKE, Ledger, SessionRecord
from kiosk.core.settlement import build_settlement, receipt_lines
from kiosk.core.snapshot import (CHOOSING, DOOR_OPEN, IDLE, RECEIPT, REFUSED, RESTOCK, SCANNING, STAFF_PIN, Receipt,
                                 Snapshot, StaffView)
from kiosk.core.staff import check_pin, valid_pin

LOGGER = logging.getLogger(__name__)


MAX_RESCAN_BACKOFF = 32
STAFF_LOCKOUT_S = 300.0      # after too many wrong PINs, the staff card is refused this long


@dataclass
class _Staff:
    """A staff member between the staff card and the PIN."""
    key: str
    hint: str
    wrong: int = 0


class Flow(DoorTracking):
    """One bookcase's sessions. Call ``start()`` once, then ``handle(event)`` for every event."""

    def __init__(self, *, bookcase_id: str, doors: Iterable[int], ledger: Ledger, policy: LoanPolicy,
                 secret: str, loan_days: int = 30, choose_door_timeout_s: float = 30.0,
                 door_open_timeout_s: float = 20.0, door_open_prompt_s: float = 30.0,
                 door_open_alarm_s: float = 90.0, receipt_s: float = 8.0, rescan_interval_s: float = 10.0,
                 default_door: int | None = None, online: bool = True, ecard_key: str | None = None,
                 ecard_skew_s: int = ecard.CLOCK_SKEW_S, pin_timeout_s: float = 30.0, pin_tries: int = 3,
                 restock_summary_s: float = 30.0, clock: Callable[[], float] = kiosk_clock.monotonic,
                 wallclock: Callable[[], datetime] = kiosk_clock.now) -> None:
        self.bookcase_id = bookcase_id
        self.ledger = ledger
        self.policy = policy
        self.secret = secret
        self.loan_days = loan_days
        self.choose_door_timeout_s = choose_door_timeout_s
        self.door_open_timeout_s = door_open_timeout_s
        self.door_open_prompt_s = door_open_prompt_s
        self.door_open_alarm_s = door_open_alarm_s
        self.receipt_s = receipt_s
        self.rescan_interval_s = rescan_interval_s
        self.default_door = default_door
        self.clock = clock
        self.wallclock = wallclock
        self.doors = {n: Door(n) for n in doors}
        self.links_down: set[str] = set()         # devices whose link-down alarm is raised and not cleared
        self.live: dict[str, LiveSession] = {}
        self.state = IDLE
        self.deadline: float | None = None
        self.patron: Patron | None = None
        self.decision: Decision | None = None
        self.current: str | None = None          # the patron-facing session
        self.current_door: int | None = None
        self.reason: str | None = None
        self.receipt: Receipt | None = None
        self.chosen_door: tuple[int, float] | None = None   # a door picked before the card, until when
        self.online = online                     # the link to the library (offline rules when False)
        self.last_sync: str | None = None
        self.ecard_key = ecard_key
        self.ecard_skew_s = ecard_skew_s
        self.pin_timeout_s = pin_timeout_s
        self.pin_tries = pin_tries
        self.restock_summary_s = restock_summary_s
        self.staff: _Staff | None = None
        self.staff_lockout: dict[str, float] = {}          # staff key -> monotonic time the lockout ends
        self.restock: dict[int, tuple[int, int] | None] = {}   # door -> (added, removed) once counted
        self.out_of_service = False
        self.disk_low = False

    # --- public API -----------------------------------------------------------------------------

    def start(self) -> list[ev.Effect]:
        """Resume sessions left open by a crash or power cut: wait for their doors, rescan, finish.

        Every door is unknown until the lock board reports it. A session whose door was never seen open is
        resumed by ``resume_plan`` with ``door_open_timeout_s`` as the bound — the time the patron was given to
        open the door: a younger unlock the board never confirmed is sent again at once; an older session is
        over for the patron (the screen says so if the door never unlocked) and is counted as soon as its door
        is known closed, so whatever did leave is still charged to its patron."""
        now = self.clock()
        effects: list[ev.Effect] = []
        for record in self.ledger.open_sessions():
            live = LiveSession(record, started=now, opened=now if record.state == S_OPEN else None)
            self.live[record.id] = live
            LOGGER.warning("door %d: resuming %s session %s left open by a restart (state %s)",
                           record.door, record.kind, record.id[:8], record.state)
            patron_facing = record.kind in (PATRON, RETURN)
            if record.state in NOT_YET_OPEN and record.kind in (PATRON, RETURN, RESTOCK_KIND):
                age = record.age_s(self.wallclock())
                plan = resume_plan(record, age, self.door_open_timeout_s)
                # Unless it unlocks again now, the door may have been opened and closed while the daemon was down.
                live.unseen = plan != "unlock"
                if plan == "unlock":
                    LOGGER.warning("door %d: the board never confirmed the unlock of session %s (%.0f s ago); "
                                   "unlocking again", record.door, record.id[:8], age)
                    effects.append(ev.Unlock(record.door, record.id))
                elif plan == "expire":
                    LOGGER.warning("door %d: session %s began %s ago, too long for the patron to be waiting; it "
                                   "ends as soon as the door is known closed", record.door, record.id[:8],
                                   "an unknown time" if age is None else f"{age:.0f} s")
                    live.started = now - self.door_open_timeout_s
                    if patron_facing and record.state == S_UNLOCKING:
                        self._enter(REFUSED, self.receipt_s, reason="session_ended")
                    continue
            if patron_facing:
                self.current, self.current_door = record.id, record.door
                self._enter(DOOR_OPEN, None, reason=None)
        busy = {live.record.door for live in self.live.values()}
        for door in self.ledger.doors_never_counted(d for d in self.doors if d not in busy):
            # First boot of this compartment: take stock of what is inside, without calling it returns.
            record = SessionRecord(id=str(uuid.uuid4()), kind=STOCKTAKE, door=door, state=S_SCANNING,
                                   before={}, opened_at=self._iso())
            self.ledger.open_session(record, [{"type": "session_opened", "session": record.id, "door": door,
                                               "patron": None, "kind": STOCKTAKE}])
            self.live[record.id] = LiveSession(record, started=now)
            LOGGER.info("door %d: first start; a stocktake runs once the door is seen closed", door)
        return effects

    def handle(self, event: ev.Event) -> list[ev.Effect]:
        handler = getattr(self, "_handle_" + type(event).__name__)
        return handler(event) or []

    def snapshot(self) -> Snapshot:
        in_service = tuple(n for n, d in self.doors.items() if d.in_service)
        out = tuple(n for n, d in self.doors.items() if d.faults)
        # Doors a session waits on while the lock board cannot tell their state: "checking door N".
        checking = tuple(sorted({lv.record.door for lv in self.live.values()
                                 if not self.doors[lv.record.door].known}))
        decision = self.decision
        until, held_open, kind = self.deadline, False, None
        live = self.live.get(self.current) if self.current else None
        if live is not None:
            kind = live.record.kind
            if live.opened is None:         # the door_open timeout does not run while the door is unknown
                until = live.started + self.door_open_timeout_s if live.record.door not in checking else None
            else:
                held_open = live.prompted
                until = live.opened + (self.door_open_alarm_s if held_open else self.door_open_prompt_s)
        staff = None
        if self.state == STAFF_PIN and self.staff is not None:
            staff = StaffView(pin_error=self.staff.wrong > 0)
        elif self.state == RESTOCK:
            kind = RESTOCK_KIND
            scanning = {lv.record.door for lv in self.live.values() if lv.scanning}
            staff = StaffView(
                doors_open=tuple(n for n in self.restock if self.doors[n].state == OPEN),
                counting=tuple(n for n, done in self.restock.items() if done is None and n in scanning),
                checking=tuple(n for n, done in self.restock.items() if done is None and n in checking),
                summary=tuple((n, *done) for n, done in sorted(self.restock.items()) if done is not None))
        return Snapshot(state=self.state, door=self.current_door, reason=self.reason,
                        may_borrow=decision.may_borrow if decision else 0,
                        limit=decision.limit if decision else 0, receipt=self.receipt,
                        doors_in_service=in_service, doors_out_of_service=out,
                        out_of_service=bool(self.doors) and all(d.faults for d in self.doors.values()),
                        until=until, held_open=held_open, offline=not self.online, kind=kind, staff=staff,
                        checking=checking)

    def session_for_door(self, door: int) -> LiveSession | None:
        for live in self.live.values():
            if live.record.door == door:
                return live
        return None

    # --- identification and door choice ---------------------------------------------------------

    def _handle_CardPresented(self, event: ev.CardPresented) -> list[ev.Effect]:
        text = event.number.strip()
        if self.state == STAFF_PIN and event.source == "scanner" and valid_pin(text):
            # Until the touch screen's keypad, a PIN comes on the scanner line after the staff card.
            return self._handle_PinEntered(ev.PinEntered(text))
        is_ecard = event.source == "scanner" and ecard.looks_like_token(text)
        hint = "e-card" if is_ecard else card_hint(text)
        if self.state in (CHOOSING, DOOR_OPEN, SCANNING, STAFF_PIN, RESTOCK):
            LOGGER.info("card %s ignored: a session is in progress (%s)", hint, self.state)
            return []
        if is_ecard:
            key = self._ecard_patron(text)
            if key is None:
                return []
            hint = "e-card " + key[:4]
        else:
            key = patron_key(self.secret, text)
            if self.ledger.staff_pin_hash(key) is not None:
                return self._staff_card(key, hint)
        patron = self.ledger.patron(key)
        offline = not self.online
        decision = self.policy.decide(patron, self.ledger.open_loan_count(key), offline=offline,
                                      offline_loans=self.ledger.offline_loan_count(key) if offline else 0)
        if not decision.allowed:
            LOGGER.info("card %s refused: %s%s", hint, decision.reason, " (offline)" if offline else "")
            self._refuse(decision.reason, key if patron else None)
            self.decision = decision
            return []
        self.patron, self.decision = replace(patron, card_hint=hint), decision
        LOGGER.info("card %s accepted: class %s, may borrow %d more (limit %d)%s",
                    hint, patron.patron_class, decision.may_borrow, decision.limit, " (offline)" if offline else "")
        return self._choose_door()

    def _handle_ReturnStart(self, _: ev.ReturnStart) -> list[ev.Effect]:
        if self.state not in (IDLE, RECEIPT, REFUSED):
            LOGGER.info("return without a card ignored: a session is in progress (%s)", self.state)
            return []
        self.patron, self.decision = None, Decision(True, "return_only")
        LOGGER.info("return without a card: choosing a door")
        return self._choose_door()

    def _ecard_patron(self, text: str) -> str | None:
        """The patron key of a valid, unused e-card code; otherwise refuse and return None."""
        if not self.ecard_key:
            LOGGER.info("e-card code refused: no e-card key is configured on this bookcase")
            self._refuse("ecard_unsupported")
            return None
        now = int(self.wallclock().timestamp())
        try:
            card = ecard.verify(self.ecard_key, text, now, self.ecard_skew_s)
        except ecard.EcardError as exc:
            LOGGER.warning("e-card code refused: %s", exc)
            self._refuse(exc.reason)
            return None
        try:
            seen = self.ledger.ecard_seen(card.token_id, card.expires, now)
        except Exception as exc:       # a code that cannot be marked used could be shown again: refuse it
            LOGGER.error("e-card code %s cannot be recorded as used (%s); refused", card.token_id[:8], exc)
            self._refuse("out_of_order", card.patron_key)
            return None
        if seen:
            LOGGER.warning("e-card code refused: already used here (replay of code %s)", card.token_id[:8])
            self._refuse(ecard.USED, card.patron_key)
            return None
        return card.patron_key

    def _refuse(self, reason: str, key: str | None = None) -> None:
        self._event({"type": "refusal", "patron": key, "reason": reason})     # a full disk still tells the patron
        self._enter(REFUSED, self.receipt_s, reason=reason)
        self.decision = None

    def _choose_door(self) -> list[ev.Effect]:
        assert self.decision is not None
        door = None
        if self.chosen_door and self.chosen_door[1] >= self.clock():
            door = self.chosen_door[0]
        elif self.default_door is not None:
            door = self.default_door
        self.chosen_door = None
        if door is not None:
            effects = self._open_for_patron(door)
            if effects or self.decision is None:        # opened, or refused (the session could not be saved)
                return effects
        self._enter(CHOOSING, self.choose_door_timeout_s, reason=self.decision.reason)
        if not self._free_doors():
            LOGGER.warning("no door is free")
            self._enter(REFUSED, self.receipt_s, reason="no_door")
        return []

    def _handle_BadScan(self, event: ev.BadScan) -> None:
        LOGGER.warning("scanner sent something that is not a card number: %s", event.reason)
        if self.state in (IDLE, RECEIPT, REFUSED):
            self._enter(REFUSED, self.receipt_s, reason="bad_scan")

    def _handle_DoorChosen(self, event: ev.DoorChosen) -> list[ev.Effect]:
        if event.door not in self.doors:
            LOGGER.warning("door %d chosen, but this bookcase has no such door", event.door)
            return []
        if self.state == CHOOSING:
            return self._open_for_patron(event.door)
        if self.state in (IDLE, RECEIPT, REFUSED):
            # A door picked before the card: remembered for one card, briefly.
            self.chosen_door = (event.door, self.clock() + self.choose_door_timeout_s)
            LOGGER.info("door %d chosen; waiting for a card", event.door)
        return []

    def _handle_Cancel(self, _: ev.Cancel) -> None:
        if self.state in (CHOOSING, REFUSED, RECEIPT, STAFF_PIN) or (
                self.state == RESTOCK and self._restock_may_close()):
            self._idle()
        self.chosen_door = None

    def _restock_may_close(self) -> bool:
        """Staff may leave the restock screen once every door is counted, or the only ones left are doors whose
        board does not answer: those stay open sessions, counted in the background when the board is back."""
        return all(done is not None or not self.doors[n].known for n, done in self.restock.items())

    def _free_doors(self) -> list[int]:
        return [n for n, d in self.doors.items()
                if d.in_service and d.state == CLOSED and self.session_for_door(n) is None]

    def _open_for_patron(self, door: int) -> list[ev.Effect]:
        state = self.doors[door]
        if door not in self._free_doors():
            why = ("out of service: " + "; ".join(state.faults.values())) if state.faults else (
                "busy" if self.session_for_door(door) else "not ready")
            LOGGER.info("door %d cannot be opened for the patron: %s", door, why)
            return []
        assert self.decision is not None
        patron = self.patron
        record = SessionRecord(id=str(uuid.uuid4()), kind=PATRON if patron else RETURN, door=door,
                               state=S_UNLOCKING, before=self.ledger.door_holdings(door), opened_at=self._iso(),
                               patron_key=patron.key if patron else None,
                               card_hint=patron.card_hint if patron else "", may_borrow=self.decision.may_borrow,
                               offline=not self.online)
        if not self._open_session(record):
            self._refuse("out_of_order")
            return []
        self.current, self.current_door = record.id, door
        self._enter(DOOR_OPEN, None, reason=self.decision.reason)
        LOGGER.info("door %d: unlocking for %s (session %s, %d books inside)", door,
                    f"card {record.card_hint}" if patron else "a return without a card", record.id[:8],
                    len(record.before))
        return [ev.Unlock(door, record.id)]

    def _open_session(self, record: SessionRecord) -> bool:
        # Invariant 2: the before-inventory is on disk before the lock is told to open.
        try:
            self.ledger.open_session(record, [{"type": "session_opened", "session": record.id, "door": record.door,
                                               "patron": record.patron_key, "kind": record.kind}])
        except Exception as exc:      # a full disk, a damaged database: no record, so no door opens
            LOGGER.error("door %d: cannot record a new session, so the door stays shut (%s)", record.door, exc)
            return False
        self.live[record.id] = LiveSession(record, started=self.clock())
        return True

    # --- staff ----------------------------------------------------------------------------------

    def _staff_card(self, key: str, hint: str) -> list[ev.Effect]:
        if self.staff_lockout.get(key, 0.0) > self.clock():
            LOGGER.warning("staff card %s refused: locked after too many wrong PINs", hint)
            self._refuse("staff_locked")
            return []
        self.staff = _Staff(key, hint)
        LOGGER.info("staff card %s: waiting for the PIN", hint)
        self._enter(STAFF_PIN, self.pin_timeout_s, reason=None)
        return []

    def _handle_PinEntered(self, event: ev.PinEntered) -> list[ev.Effect]:
        staff = self.staff
        if self.state != STAFF_PIN or staff is None:
            LOGGER.info("PIN ignored: no staff card was presented")
            return []
        stored = self.ledger.staff_pin_hash(staff.key)
        if stored is None or not check_pin(event.pin, stored):
            staff.wrong += 1
            LOGGER.warning("staff card %s: wrong PIN (%d of %d tries)", staff.hint, staff.wrong, self.pin_tries)
            if staff.wrong >= self.pin_tries:
                self.staff_lockout[staff.key] = self.clock() + STAFF_LOCKOUT_S
                self._alarm("staff_pin_failed", None, staff=staff.key, tries=staff.wrong)
                self.staff = None
                self._refuse("staff_locked")
            else:
                self._enter(STAFF_PIN, self.pin_timeout_s, reason="staff_pin_wrong")
            return []
        return self._start_restock(staff)

    def _start_restock(self, staff: _Staff) -> list[ev.Effect]:
        self.staff = None
        self.restock = {}
        effects: list[ev.Effect] = []
        for door in self.doors:
            if door not in self._free_doors():
                LOGGER.warning("restock: door %d skipped (%s)", door,
                               "out of service" if self.doors[door].faults else "busy")
                continue
            record = SessionRecord(id=str(uuid.uuid4()), kind=RESTOCK_KIND, door=door, state=S_UNLOCKING,
                                   before=self.ledger.door_holdings(door), opened_at=self._iso(),
                                   patron_key=staff.key, card_hint=staff.hint)
            if self._open_session(record):
                self.restock[door] = None
                effects.append(ev.Unlock(door, record.id))
        LOGGER.info("staff card %s: restock, unlocking doors %s", staff.hint,
                    ", ".join(map(str, self.restock)) or "none")
        self._event({"type": "restock_started", "staff": staff.key, "doors": sorted(self.restock)})
        self._enter(RESTOCK, None if self.restock else self.restock_summary_s, reason=None)
        return effects

    # --- doors (the lock board's reports: kiosk.core.doors.DoorTracking) ---------------------------

    def _request_scan(self, live: LiveSession) -> list[ev.Effect]:
        if live.scanning:
            return []
        if self.doors[live.record.door].state != CLOSED:
            # Invariant: a compartment is only counted behind a door known to be closed. An open door is
            # counted when it closes; a door whose state is unknown, once the lock board reports it again.
            LOGGER.info("door %d: the count waits until the door is known to be closed", live.record.door)
            return []
        if live.record.state != S_SCANNING:
            self._persist_state(live, S_SCANNING)
        live.scanning, live.scan_due = True, None
        live.scan_attempt += 1
        if live.record.id == self.current:
            self._enter(SCANNING, None, reason=self.reason)
        return [ev.Scan(live.record.door, live.record.id, self.ledger.known_uids(), live.scan_attempt)]

    # --- inventory results ----------------------------------------------------------------------

    def _waited_for(self, event: ev.ScanResult | ev.ScanFailed) -> LiveSession | None:
        """The session whose running count this is; None for a count it no longer waits for (the door opened,
        or its state was lost, while it ran: what it saw may be out of date)."""
        live = self.live.get(event.session_id)
        if live is None or not live.scanning or event.attempt != live.scan_attempt:
            LOGGER.info("door %d: the result of an inventory begun before the door last opened (or before its "
                        "state was lost) is ignored", event.door)
            return None
        live.scanning = False
        return live

    def _handle_ScanResult(self, event: ev.ScanResult) -> list[ev.Effect]:
        live = self._waited_for(event)
        if live is None:
            return []
        if live.scan_failures:
            LOGGER.info("door %d: reader answers again", event.door)
            self.doors[event.door].faults.pop("rfid", None)
            self._event({"type": "alarm_cleared", "alarm": "hardware_fault", "door": event.door, "device": "rfid"})
        self._settle(live, event)
        return []

    def _handle_ScanFailed(self, event: ev.ScanFailed) -> None:
        live = self._waited_for(event)
        if live is None:
            return
        live.scan_failures += 1
        # Back off while the reader stays down (x1, x2, x4 ... x32); a link-up event retries at once.
        delay = self.rescan_interval_s * min(2 ** (live.scan_failures - 1), MAX_RESCAN_BACKOFF)
        live.scan_due = self.clock() + delay
        LOGGER.error("door %d: inventory failed (%s); session %s stays open and is retried in %.1f s",
                     event.door, event.error, event.session_id[:8], delay)
        if live.scan_failures == 1:
            self.doors[event.door].faults["rfid"] = event.error
            self._alarm("hardware_fault", event.door, device="rfid", message=event.error,
                        session=event.session_id)
        if event.session_id == self.current:
            self.current = None
            self.receipt = Receipt(pending=True)
            self._enter(RECEIPT, self.receipt_s, reason="pending")

    def _settle(self, live: LiveSession, result: ev.ScanResult) -> None:
        record = live.record
        new = (result.present | result.uncertain) - set(record.before) - set(result.tags)
        item_ids = self.ledger.item_ids(new)           # tags known from earlier reads, anywhere here
        settlement = build_settlement(record, result, item_ids, self.wallclock(), self.loan_days)
        loans, returns, summary = settlement.loans, settlement.returns, settlement.summary
        # Invariant 6: loans, returns, holdings and outbox events land in one transaction.
        try:
            self.ledger.settle(settlement)
        except Exception as exc:
            # A full disk or a damaged database: nothing was written, so nothing is lost or doubled.
            # The session stays open and the whole count runs again later.
            live.scan_due = self.clock() + self.rescan_interval_s
            LOGGER.error("door %d: could not record the session %s (%s); it stays open and is counted again "
                         "in %.0f s", record.door, record.id[:8], exc, self.rescan_interval_s)
            if record.id == self.current:
                self.current = None
                self.receipt = Receipt(pending=True)
                self._enter(RECEIPT, self.receipt_s, reason="pending")
            return
        del self.live[record.id]
        if record.kind == RESTOCK_KIND and record.door in self.restock:
            self.restock[record.door] = (summary["restocked"], summary["unstocked"])
            if self.state == RESTOCK and all(done is not None for done in self.restock.values()):
                LOGGER.info("restock finished: %s", ", ".join(
                    f"door {n} +{a} -{r}" for n, (a, r) in sorted(self.restock.items())))
                self._enter(RESTOCK, self.restock_summary_s, reason=None)
        titles = self.ledger.titles(h.item_id for h in (*loans, *returns) if h.item_id)
        receipt = Receipt(borrowed=tuple((h.item_id, titles.get(h.item_id, ""), settlement.due_at) for h in loans),
                          returned=tuple((h.item_id, titles.get(h.item_id, "")) for h in returns),
                          uncertain=summary["uncertain"])
        for line in receipt_lines(record, receipt, summary):
            LOGGER.info("%s", line)
        if record.id == self.current:
            self.current = None
            self.receipt = receipt
            self._enter(RECEIPT, self.receipt_s, reason=None)

    # --- devices and time -----------------------------------------------------------------------

    def _handle_DeviceLink(self, event: ev.DeviceLink) -> list[ev.Effect]:
        doors = tuple(n for n in event.doors if n in self.doors)
        for n in doors:
            if event.up:
                self.doors[n].faults.pop(event.device, None)
            else:
                self.doors[n].faults[event.device] = event.message
        effects: list[ev.Effect] = []
        lockboard = event.device == LINK_FAULT
        if lockboard and event.up:
            effects.append(ev.ReportDoors(doors))     # their state now, from the board that is back
        elif lockboard:
            effects += self._lose(doors)
        if event.up:
            LOGGER.info("%s: link up (%s)", event.device, event.message)
            if event.device in self.links_down:
                # Only a link that was down clears an alarm: a plain start-up raises none.
                self.links_down.discard(event.device)
                self._event({"type": "alarm_cleared", "alarm": "hardware_fault", "device": event.device})
            if event.device == "rfid":
                for live in self.live.values():
                    if live.scan_due is not None:
                        live.scan_due = self.clock()
        else:
            if event.doors:
                LOGGER.error("%s: link down (%s); doors %s out of service", event.device, event.message,
                             ", ".join(map(str, event.doors)))
            else:
                LOGGER.error("%s: link down (%s); no door depends on it, the doors keep working", event.device,
                             event.message)
            live = self.live.get(self.current) if self.current else None
            if live is not None and live.record.door in event.doors and self.state in (DOOR_OPEN, SCANNING):
                # The patron's door can no longer be watched: the session finishes in the background
                # once the device is back, and the screen is free for the doors that still work. It says
                # which door is being checked (the lock board) or that the books are being recorded.
                LOGGER.warning("door %d: session %s continues in the background until %s is back",
                               live.record.door, live.record.id[:8], event.device)
                self.current = None
                self.receipt = Receipt(pending=True)
                self._enter(RECEIPT, self.receipt_s, reason="door_checking" if lockboard else "pending")
            if event.device not in self.links_down:
                self.links_down.add(event.device)
                self._alarm("hardware_fault", None, device=event.device, message=event.message)
        self._check_service()
        return effects

    def _check_service(self) -> None:
        # The bookcase as a whole is out of service only when no door can work.
        out = bool(self.doors) and all(d.faults for d in self.doors.values())
        if out == self.out_of_service:
            return
        self.out_of_service = out
        if out:
            LOGGER.error("bookcase %s is out of service: no door can work", self.bookcase_id)
            self._alarm("out_of_service", None)
        else:
            LOGGER.info("bookcase %s is back in service (doors %s work)", self.bookcase_id,
                        ", ".join(str(n) for n, d in self.doors.items() if not d.faults))
            self._event({"type": "alarm_cleared", "alarm": "out_of_service"})

    def _handle_SyncState(self, event: ev.SyncState) -> None:
        if event.online != self.online:
            LOGGER.info("bookcase %s is now %s", self.bookcase_id,
                        "online" if event.online else "offline: known patrons only, with the offline loan cap")
        self.online = event.online
        if event.last_sync:
            self.last_sync = event.last_sync

    def _handle_DiskSpace(self, event: ev.DiskSpace) -> None:
        if event.low and not self.disk_low:
            LOGGER.error("data partition nearly full: %d MB free; sessions are recorded while space lasts",
                         event.free_mb)
            self._alarm("disk_low", None, free_mb=event.free_mb)
        elif not event.low and self.disk_low:
            LOGGER.info("data partition has room again: %d MB free", event.free_mb)
            self._event({"type": "alarm_cleared", "alarm": "disk_low", "free_mb": event.free_mb})
        self.disk_low = event.low

    def _handle_Tick(self, _: ev.Tick) -> list[ev.Effect]:
        now = self.clock()
        effects: list[ev.Effect] = []
        if self.deadline is not None and now >= self.deadline:
            if self.state == CHOOSING:
                LOGGER.info("no door chosen in time; back to idle")
            self._idle()
        for live in list(self.live.values()):
            record = live.record
            door = self.doors[record.door]
            # Every timer needs the door's real state: while it is unknown, nothing is decided for it.
            if record.state in NOT_YET_OPEN and live.opened is None and not live.scanning and \
                    now - live.started >= self.door_open_timeout_s and door.state == CLOSED:
                LOGGER.info("door %d was not opened within %.0f s; checking the compartment",
                            record.door, self.door_open_timeout_s)
                effects += self._request_scan(live)
                if record.id == self.current:
                    self.current = None
                    self._idle()
            elif live.opened is not None and door.state == OPEN:
                held = now - live.opened
                if held >= self.door_open_prompt_s and not live.prompted:
                    live.prompted = True
                    LOGGER.warning("door %d open for %.0f s: prompting to close it", record.door, held)
                if held >= self.door_open_alarm_s and not live.alarmed:
                    live.alarmed = True
                    self._alarm("door_held_open", record.door, session=record.id, seconds=round(held))
            if live.scan_due is not None and now >= live.scan_due and not live.scanning and door.state == CLOSED:
                LOGGER.info("door %d: retrying the inventory (attempt %d)", record.door, live.scan_failures + 1)
                effects += self._request_scan(live)
        return effects

    # --- helpers --------------------------------------------------------------------------------

    def _enter(self, state: str, timeout_s: float | None, *, reason: str | None) -> None:
        self.state = state
        self.reason = reason
        self.deadline = None if timeout_s is None else self.clock() + timeout_s
        if state != RECEIPT:
            self.receipt = None

    def _idle(self) -> None:
        self.state, self.deadline, self.reason, self.receipt = IDLE, None, None, None
        self.patron, self.decision, self.current_door = None, None, None
        self.staff, self.restock = None, {}
        if self.current is not None and self.current not in self.live:
            self.current = None

    def _persist_state(self, live: LiveSession, state: str) -> None:
        live.record = replace(live.record, state=state)
        self.ledger.set_session_state(live.record.id, state)

    def _alarm(self, alarm: str, door: int | None, **fields) -> None:
        LOGGER.warning("alarm %s%s %s", alarm, f" on door {door}" if door is not None else "",
                       " ".join(f"{k}={v}" for k, v in fields.items()))
        self._event({"type": "alarm", "alarm": alarm, "door": door, **fields})

    def _event(self, event: dict) -> None:
        try:
            self.ledger.record_events([event])
        except Exception as exc:      # an alarm that cannot be stored (full disk) is still logged
            LOGGER.error("could not record the %s event (%s)", event.get("alarm", event["type"]), exc)

    def _iso(self) -> str:
        return self.wallclock().isoformat(timespec="milliseconds")
