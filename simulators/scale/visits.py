"""Patrons at the bookcases: each visit played step by step on the simulated clock, and what physically happened.

A visit: the patron shows a card (``CardPresented``); if the flow accepts it, they pick a door with room for what
they bring back and books they want (``DoorChosen``), wait for it to pop open, put their returns in, take the
books they want — never more than the screen said they may ("you may borrow N more") — and close the door. The
bookcase counts the compartment and settles the session. The ground truth (``Physical``) is what the patron's
hands did, recorded when the session settles: the check later finds each of these once at the ILS.

A patron who finds the screen busy (another patron, a daemon restarting) waits and tries again a little later.
Some visits are ambiguous on purpose (a foreign tag put in, one book over the limit, an item the ILS has
withdrawn): the review queue must hold exactly those.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiosk.core import events as ev
from kiosk.core.snapshot import CHOOSING
from kiosk.core.doors import CLOSED
from simulators.errors import SimError
from simulators.fleet.bookcases import make_book
from simulators.scale.model import Circulation, Tally, Visit

if TYPE_CHECKING:
    from simulators.scale.bookcase import SimBookcase
    from simulators.scale.fleet import FleetRun

LOGGER = logging.getLogger(__name__)

WAIT_S = (60.0, 240.0)          # a patron who finds the screen busy comes back this much later
MAX_TRIES = 30
OPENS_WITHIN_S = 60             # a door that has not popped open by then: the patron leaves
HANDS_S = (4.0, 15.0)           # from the door popping open to the books being in and out
CLOSE_S = (2.0, 6.0)
OVER_LIMIT_WHEN_MAY = 5         # the over-limit patron is one the screen lets borrow this many at most (offline cap)


@dataclass(frozen=True)
class Physical:
    """A loan or return that physically happened: what the ILS must end up with, once."""
    kind: str                    # "loan" | "return"
    item: str
    card: str | None             # the borrower (a loan)
    bookcase: str
    session: str
    t: float                     # simulated second the bookcase settled it (its event's ts)
    real: float                  # Unix time then, for the latency figures


@dataclass
class Expected:
    """Review-queue entries the model caused on purpose."""
    kind: str                    # foreign_object | over_limit | rejected
    bookcase: str
    item: str | None = None


@dataclass
class Moves:
    door: int = 0
    may: int = 0
    session: str | None = None
    returned: list[str] = field(default_factory=list)
    borrowed: list[str] = field(default_factory=list)
    done: bool = False


class Visits:
    def __init__(self, run: FleetRun, model: Circulation, seed: int) -> None:
        self.run = run
        self.model = model
        self.rng = random.Random(seed + 7)
        self.truth: list[Physical] = []
        self.expected: list[Expected] = []
        self.tally = Tally()
        self.refusals: Counter = Counter()
        self.moves: dict[int, Moves] = {}                 # id(visit) -> what the hands did
        self.by_session: dict[tuple[int, str], Visit] = {}
        self.extras: list[tuple[float, str]] = []         # (not before, "junk" | "over_limit"), in time order
        self.takes: dict[int, str] = {}                   # bookcase -> an item its next visit takes
        self.gave_up = 0
        self.loan_started: dict[str, float] = {}          # loan event id -> Unix time it was recorded

    # --- arriving ----------------------------------------------------------------------------------------

    def arrive(self, b: int, tries: int = 0) -> None:
        run = self.run
        bc = run.bookcases[b]
        t = run.clock.t
        if not bc.ready_for_patron():
            if tries < MAX_TRIES:
                run.scheduler.after(self.rng.uniform(*WAIT_S), self.arrive, b, tries + 1)
            else:
                self.gave_up += 1
            return
        visit = self.model.plan(t, b)
        if visit is None:
            return
        if self.extras and self.extras[0][0] <= t:
            visit.extra = self.extras.pop(0)[1]
        if b in self.takes:
            visit.take = self.takes.pop(b)
        card = self.model.card(visit.user)
        bc.handle(ev.CardPresented(card.number))
        flow = bc.flow
        if flow.state != CHOOSING or flow.decision is None:
            self._fail(bc, visit, flow.reason or flow.state)
            return
        door = self._door(bc, len(visit.returns))
        if door is None:
            bc.handle(ev.Cancel())
            self._fail(bc, visit, "no_door")
            return
        moves = Moves(door=door, may=flow.decision.may_borrow)
        bc.handle(ev.DoorChosen(door))
        if flow.current is None:
            bc.handle(ev.Cancel())
            self._fail(bc, visit, flow.reason or "door_not_opened")
            return
        moves.session = flow.current
        bc.visit = visit
        self.moves[id(visit)] = moves
        self.by_session[(b, moves.session)] = visit
        run.ticking(bc)
        run.scheduler.after(0.5, self._hands, b, visit, 0)

    def _fail(self, bc: SimBookcase, visit: Visit, reason: str) -> None:
        self.refusals[reason] += 1
        self.tally.visits_failed += 1
        self.model.abandon(visit, self.run.clock.t)
        if visit.take is not None:
            self.takes[visit.bookcase] = visit.take      # someone else takes it another time
        if visit.extra is not None:
            self.extras.insert(0, (0.0, visit.extra))

    def _door(self, bc: SimBookcase, returns: int) -> int | None:
        """The door a patron picks: one free, with room for the returns, holding the most books."""
        best, best_key = None, None
        for number, door in bc.flow.doors.items():
            if not door.in_service or door.state != CLOSED or bc.flow.session_for_door(number) is not None:
                continue
            count = len(bc.world.items_behind(number))
            room = bc.cfg.door(number).capacity - count
            key = (room >= returns, count if room >= returns else room)
            if best_key is None or key > best_key:
                best, best_key = number, key
        return best

    # --- at the door ---------------------------------------------------------------------------------------

    def _hands(self, b: int, visit: Visit, waited: int) -> None:
        run = self.run
        bc = run.bookcases[b]
        moves = self.moves[id(visit)]
        if not bc.world.door_state(moves.door)["open"]:
            if waited < OPENS_WITHIN_S:
                run.scheduler.after(1.0, self._hands, b, visit, waited + 1)
            else:
                LOGGER.warning("bookcase %s: door %d never opened for the patron; they left", bc.id, moves.door)
                moves.done = True
            return
        try:
            self._move(bc, visit, moves)
        finally:                                          # whatever went wrong, the patron closes the door
            run.faults.hands_done(bc)                     # a daemon may be killed right now, mid-session
            run.scheduler.after(self.rng.uniform(*CLOSE_S), self._close, b, visit)

    def _move(self, bc: SimBookcase, visit: Visit, moves: Moves) -> None:
        world, door = bc.world, moves.door
        capacity = bc.cfg.door(door).capacity
        for item in visit.returns:
            if len(world.items_behind(door)) >= capacity:
                break
            try:
                world.book(item)
            except SimError:
                book = self.model.books[item]
                world.add_book(make_book(item, book.title, book.author))
            world.put(door, item)
            moves.returned.append(item)
        if visit.extra == "junk" and len(world.items_behind(door)) < capacity:
            world.put_junk(door)
            self.expected.append(Expected("foreign_object", bc.id))
        want = min(visit.wanted, moves.may)
        if visit.extra == "over_limit":
            if moves.may <= OVER_LIMIT_WHEN_MAY:
                want = moves.may + 1                      # one more than the screen allows
                self.expected.append(Expected("over_limit", bc.id))
            else:
                self.extras.insert(0, (0.0, "over_limit"))     # a patron nearer a limit will do it
        # Library books only, and not what they just brought back.
        shelf = [i for i in world.items_behind(door) if i in self.model.books and i not in moves.returned]
        for item in self.model.pick_loans(visit, shelf, want):
            world.take(door, item)
            moves.borrowed.append(item)
        if visit.take is not None and visit.take not in moves.borrowed:
            self.takes[bc.index] = visit.take

    def _close(self, b: int, visit: Visit) -> None:
        bc = self.run.bookcases[b]
        moves = self.moves[id(visit)]
        bc.world.close(moves.door)
        if bc.alive:
            self.run.scheduler.after(0.1, bc.sense, moves.door)
        moves.done = True

    # --- settled ----------------------------------------------------------------------------------------

    def settled(self, bc: SimBookcase, session: str, info: dict) -> None:
        visit = self.by_session.pop((bc.index, session), None)
        self.run.pump_soon(bc, 0.6)                       # the holdings message after a session
        if visit is None:
            return
        moves = self.moves.pop(id(visit))
        t, real = self.run.clock.t, time.time()
        card = self.model.card(visit.user).number
        for item in moves.borrowed:
            self.truth.append(Physical("loan", item, card, bc.id, session, t, real))
            if item == self.run.refused_item:                 # the ILS refuses every loan of it: review
                self.expected.append(Expected("rejected", bc.id, item))
        for item in moves.returned:
            self.truth.append(Physical("return", item, None, bc.id, session, t, real))
        for event_id, in bc.store.db.execute(
                "SELECT id FROM outbox WHERE type = 'loan' AND json_extract(payload, '$.session') = ?", (session,)):
            self.loan_started[event_id] = real
        tally = self.tally
        tally.visits += 1
        tally.loans += len(moves.borrowed)
        tally.returns += len(moves.returned)
        tally.children_loans += sum(1 for i in moves.borrowed if self.model.books[i].children)
        if visit.group is not None and visit.group.bookcase is not None and moves.returned:
            tally.returns_of_bookcase_loans += len(moves.returned)
            if visit.group.bookcase != bc.index:
                tally.returns_elsewhere += len(moves.returned)
        local = self.run.clock.now()
        tally.by_hour[local.hour] += len(moves.borrowed) + len(moves.returned)
        tally.by_weekday[local.weekday()] += len(moves.borrowed) + len(moves.returned)
        self.model.done(visit, moves.returned, moves.borrowed, t)
        if bc.visit is visit:
            bc.visit = None

    def in_progress(self) -> int:
        return len(self.by_session)
