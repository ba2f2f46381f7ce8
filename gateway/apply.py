"""Loans and returns -> SIP2 requests, exactly once, in each item's order, with the conflicts self-service meets.

A worker takes a logged-in connection from the pool, claims the next event whose turn it is (the journal marks
it "sending" and durable before any request leaves), applies it, and records the outcome in one transaction
with every SIP2 exchange it made. SIP2 has no idempotency, so:

- an event claimed while "uncertain" (an earlier answer was lost, or a gateway died while it was "sending")
  first asks the ILS the item's state (item information 17) and does not repeat what already happened (for a
  late loan, whose item ends checked in either way, the journal's log of earlier attempts decides; a gateway
  that died sending it left none, so staff look);
- ``Sip2Unavailable`` (nothing was sent) puts the event back to wait for the ILS; ``Sip2Lost`` (it may have been
  applied) puts it back *uncertain*.

Conflicts (docs/design.md §10, issue 12):
- a loan of an item the ILS has on loan (to someone else, or to the same patron whose return is late): check it
  in at the loan's time, then check it out;
- a return of an item not on loan at the ILS: wait up to [order] hold_s for its loan (a bookcase that was
  offline may publish it late), then check it in anyway: "informational" if the ILS says it was not on loan;
- a blocked patron or one over the limit: every checkout goes with no-block Y (the book has left the
  bookcase; the ILS records it whatever the patron's state);
- anything the ILS still refuses: "rejected" with its screen message, into the review queue;
- an event older than one of its item already applied (a late bookcase): a late return changes nothing
  (informational, "superseded"), but the ILS dated that loan's end later than it was, so it goes to the review
  queue for staff (fines); a late loan is lent and its own return applied again after it, so the
  patron's history is whole and the item ends where the latest event left it; a late loan of an item lent again
  since waits ("deferred") until a return of the item is applied, then goes the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from gateway.config import IlsConfig, OrderConfig
from gateway.ils import IlsHealth, charged, due_date
from gateway.journal import Claimed, Journal, Outcome
from gateway.journal.core import DEFERRED, ILS_DOWN, RETRY, SUPERSEDED, TAKEOVER, UNSURE, WAIT_LOAN
from gateway.sip2 import Sip2Error, Sip2Lost, Sip2Unavailable

LOGGER = logging.getLogger(__name__)

LOST_RETRY_S = 1.0            # an uncertain event is tried again this soon (after asking the ILS)
ERROR_RETRY_S = 30.0          # after an unexpected error


class Hold(Exception):
    """Not now: put the event back to wait (``reason``) until ``until`` (Unix seconds)."""

    def __init__(self, reason: str, until: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.until = until


class LeaseLost(Exception):
    """Another gateway took the event over (our lease ran out): send nothing more."""


@dataclass
class _Run:
    """One application of one event: the SIP2 exchanges so far, patrons to refresh, notes."""
    ev: Claimed
    renewed: float
    calls: list[tuple[str, bool | None, str | None, str | None]] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)


class Applier:
    """Applies claimed events through SIP2 clients; one per gateway process, used by every worker thread."""

    def __init__(self, journal: Journal, gateway_id: str, order: OrderConfig, ils: IlsConfig, health: IlsHealth,
                 touched: Callable[[set[str]], None] = lambda keys: None) -> None:
        self.journal = journal
        self.gateway = gateway_id
        self.order = order
        self.ils = ils
        self.health = health
        self.touched = touched
        self.applied = 0
        self._lock = threading.Lock()
        self._backoff = ils.backoff_min_s

    # --- one step of a worker ----------------------------------------------------------------------

    def work_once(self, pool: Any, owner: str, busy: bool = False) -> bool:
        """Claim and apply one event. False if there was nothing to do (or the ILS is down: wait a little).
        ``busy``: the last call did something, so skip the cheap look before taking a connection."""
        if not busy and not self.journal.has_work():
            return False
        run: _Run | None = None
        try:
            with pool.connection() as client:
                ev = self.journal.claim(owner, self.order.lease_s)
                if ev is None:
                    return False
                run = _Run(ev, time.monotonic())
                try:
                    outcome = self.apply(client, run, owner)
                except (Hold, LeaseLost) as exc:     # not the connection's fault: it goes back to the pool
                    outcome = exc
        except Sip2Unavailable as exc:
            self.health.down(str(exc))
            if run is not None:
                self._put_back(run, owner, self._backoff, ILS_DOWN, uncertain=run.ev.uncertain or bool(run.calls))
            self._backoff = min(self._backoff * 2, self.ils.backoff_max_s)
            return False
        except Sip2Lost as exc:
            self.health.lost_answer(str(exc))
            LOGGER.warning("%s: the ILS's answer was lost (%s); the item's state is asked before trying again",
                           _what(run.ev) if run else "a request", exc)
            if run is not None:
                self._put_back(run, owner, LOST_RETRY_S, RETRY, uncertain=True)
            return True
        except Sip2Error as exc:
            self.health.lost_answer(str(exc))
            if run is not None:
                self._put_back(run, owner, LOST_RETRY_S, RETRY, uncertain=True)
            return True
        except Exception:
            LOGGER.exception("%s: unexpected error while applying; tried again in %.0f s",
                             _what(run.ev) if run else "an event", ERROR_RETRY_S)
            if run is not None:
                self._put_back(run, owner, ERROR_RETRY_S, RETRY, uncertain=True)
            return False
        self.health.ok()
        self._backoff = self.ils.backoff_min_s
        if isinstance(outcome, Hold):
            self._put_back(run, owner, outcome.until - time.time(), outcome.reason, uncertain=False, state="held")
            return True
        if isinstance(outcome, LeaseLost):
            LOGGER.error("%s: another gateway took this event over while it was ours; nothing more sent",
                         _what(run.ev))
            return True
        if not self.journal.finish(run.ev, owner, outcome, self.gateway, calls=run.calls, touched=run.touched):
            LOGGER.error("%s: applied, but another gateway had taken it over meanwhile (lease %.0f s too short?)",
                         _what(run.ev), self.order.lease_s)
            return True
        with self._lock:
            self.applied += 1
        log = LOGGER.warning if outcome.state == "rejected" else LOGGER.info
        log("%s: %s%s", _what(run.ev), outcome.state,
            f" — {outcome.reason or outcome.screen_message}" if outcome.reason or outcome.screen_message else "")
        if run.touched:
            self.touched(run.touched)
        return True

    def _put_back(self, run: _Run | None, owner: str, hold_s: float, reason: str, *, uncertain: bool,
                  state: str = "received") -> None:
        if run is None:
            return
        self.journal.release(run.ev, owner, hold_s=max(hold_s, 0.0), reason=reason, uncertain=uncertain,
                             state=state, calls=run.calls)

    # --- the SIP2 exchanges -----------------------------------------------------------------------

    def _call(self, run: _Run, owner: str, command: str, fn: Callable[[], Any]) -> Any:
        """One request: still ours? then send; every exchange is kept for the journal."""
        if time.monotonic() - run.renewed > self.order.lease_s / 3:
            if not self.journal.renew(run.ev.id, owner, self.order.lease_s):
                raise LeaseLost()
            run.renewed = time.monotonic()
        try:
            resp = fn()
        except Sip2Lost as exc:
            run.calls.append((command, None, None, str(exc)[:200]))
            raise
        run.calls.append((command, bool(resp.ok), resp.screen_message or None, None))
        return resp

    def apply(self, client: Any, run: _Run, owner: str) -> Outcome:
        if run.ev.type == "loan":
            return self._loan(client, run, owner)
        return self._return(client, run, owner)

    def _loan(self, client: Any, run: _Run, owner: str) -> Outcome:
        ev, item, later = run.ev, run.ev.item, run.ev.later
        if ev.ils_patron is None:
            return Outcome("rejected", reason="the patron's card is not in the gateway's patron map; import the "
                                              "library's patron export, then retry from the review queue")
        run.touched.add(ev.patron)
        if later is not None and later.type == "loan":
            return Outcome("informational", reason=DEFERRED,
                           note=f"a later loan of {item} (at {later.bookcase}, {later.ts}) was applied first: this "
                                "loan and its return go to the ILS when the item is next checked in")
        when = _time(ev.ts)
        pid = ev.ils_patron
        if ev.uncertain:
            info = self._call(run, owner, "item_information", lambda: client.item_information(item))
            if charged(info.circulation_status) and info.patron_id == pid:
                return self._then_return(client, run, owner, later, Outcome(
                    "applied", due=due_date(info.due_date),
                    note="the ILS had it on loan to this patron already (an earlier answer was lost)"))
            if later is not None and not charged(info.circulation_status):
                # A late loan, lent and returned again at once by an earlier attempt — or never lent: a request
                # lost on the way changes nothing. The log of earlier attempts says which, unless one of them
                # died unlogged (nothing, or both, may have reached the ILS): then staff look.
                earlier = self.journal.sip_log(ev.id)
                if any(c["command"] == "checkout" and c["ok"] for c in earlier):
                    return Outcome("applied", note="the ILS has it back, as its later return says")
                if any(c["command"] == TAKEOVER for c in earlier):
                    return Outcome("applied", reason=UNSURE, review=True, note=(
                        "a gateway stopped while sending this late loan; the ILS has the item checked in, and "
                        "whether this loan (and its return) reached it is not known: check the patron's history "
                        "at the ILS"))
        due = _due(ev.event, when)
        resp = self._call(run, owner, "checkout", lambda: client.checkout(
            pid, item, no_block=True, transaction_ts=when, nb_due_date=due))
        if resp.ok:
            return self._then_return(client, run, owner, later, Outcome("applied", due=due_date(resp.due_date),
                                                                        screen_message=resp.screen_message or None))
        info = self._call(run, owner, "item_information", lambda: client.item_information(item))
        if not charged(info.circulation_status):
            return Outcome("rejected", reason=resp.screen_message or "the ILS refused the checkout",
                           screen_message=resp.screen_message or None)
        # On loan at the ILS, to someone else or to this same patron: the book was on the bookcase's shelf, so
        # that loan had ended; its return is late (a bookcase offline, a gateway killed holding it). This event
        # is not a replay of its own lost answer (that one is ``uncertain``, above), so lending again is right:
        # the patron's history gets the return and the new loan with its new due date.
        same = info.patron_id == pid
        if info.patron_id and not same:
            run.touched.update(self.journal.keys_of(info.patron_id))
        self._call(run, owner, "checkin", lambda: client.checkin(item, return_ts=when, location=self.ils.location,
                                                                 no_block=True))
        again = self._call(run, owner, "checkout", lambda: client.checkout(pid, item, no_block=True,
                                                                           transaction_ts=when, nb_due_date=due))
        whose = "this patron's earlier loan" if same else "another patron"
        if not again.ok:
            return Outcome("rejected", reason=again.screen_message or "the ILS refused the checkout",
                           screen_message=again.screen_message or None,
                           note=f"it was on loan to {whose}: checked in at the loan's time first")
        return self._then_return(client, run, owner, later, Outcome(
            "applied", due=due_date(again.due_date), screen_message=again.screen_message or None,
            note=f"it was on loan to {whose} at the ILS: checked in at the loan's time, then lent"))

    def _then_return(self, client: Any, run: _Run, owner: str, later: Any, outcome: Outcome) -> Outcome:
        """A late loan whose return was applied before it: the return once more, so the item ends returned — at
        the time of this loan's own return (the item's first return after it), not of a later one."""
        if later is None:
            return outcome
        own = run.ev.next
        if own is not None and own.type == "return":
            later = own
        when = _time(later.ts)
        self._call(run, owner, "checkin", lambda: client.checkin(run.ev.item, return_ts=when,
                                                                 location=self.ils.location, no_block=True))
        note = f"a late loan: its return (at {later.bookcase}, {later.ts}) applied again after it"
        return Outcome(outcome.state, reason=outcome.reason, screen_message=outcome.screen_message, due=outcome.due,
                       note=f"{outcome.note}; {note}" if outcome.note else note)

    def _return(self, client: Any, run: _Run, owner: str) -> Outcome:
        ev, item, later, before = run.ev, run.ev.item, run.ev.later, run.ev.before
        if later is not None:
            if ev.uncertain:     # an earlier attempt may have reached the ILS, with its own date
                return Outcome("informational", reason=SUPERSEDED,
                               note=f"a later {later.type} of {item} (at {later.bookcase}, {later.ts}) was applied "
                                    "first")
            # Its bookcase was late: the ILS ended the loan this return ended when the next event of the item came
            # (a return, or a loan checked in first), so the patron's return date there is later than the real one,
            # and SIP2 cannot move it back. Staff look (overdue fines for the days between).
            first = ev.next or later
            return Outcome("informational", reason=SUPERSEDED, review=True, note=(
                f"returned at {ev.bookcase} at {ev.ts}, but its bookcase was offline: the ILS recorded the return "
                f"only at {first.ts} ({first.type} at {first.bookcase}); check the patron's overdue fines for the "
                "days between"))
        lent_here = before is not None and before.type == "loan" and before.state == "applied"
        if lent_here and before.patron:
            run.touched.add(before.patron)
        info = None
        if ev.uncertain or not lent_here:
            info = self._call(run, owner, "item_information", lambda: client.item_information(item))
            if charged(info.circulation_status) and info.patron_id:
                run.touched.update(self.journal.keys_of(info.patron_id))
            if not charged(info.circulation_status):
                if ev.uncertain:
                    return Outcome("applied", note="the ILS has it checked in already (an earlier answer was lost)")
                until = ev.received_epoch + self.order.hold_s
                if time.time() < until:
                    raise Hold(WAIT_LOAN, until)
        resp = self._call(run, owner, "checkin", lambda: client.checkin(
            item, return_ts=_time(ev.ts), location=self.ils.location, no_block=True))
        if resp.ok:
            alert = getattr(resp, "alert", False)
            return Outcome("applied", screen_message=resp.screen_message or None,
                           note=f"the ILS raised an alert (type {getattr(resp, 'alert_type', '') or '?'}): "
                                "staff should look at this book" if alert else None)
        if info is None:
            info = self._call(run, owner, "item_information", lambda: client.item_information(item))
        if not charged(info.circulation_status):
            return Outcome("informational", reason="the ILS says it was not on loan",
                           screen_message=resp.screen_message or None)
        return Outcome("rejected", reason=resp.screen_message or "the ILS refused the checkin",
                       screen_message=resp.screen_message or None)


def _due(event: dict, when: datetime) -> datetime:
    """The due date the bookcase gave the patron (the loan event's ``due``, end of that day), for SIP2's no-block
    due date: an ILS that honours it keeps the bookcase's promise; the ack carries whatever the ILS set."""
    try:
        return datetime.fromisoformat(event["due"]).replace(hour=23, minute=59, tzinfo=when.tzinfo)
    except (KeyError, TypeError, ValueError):
        return when + timedelta(days=30)


def _time(ts: str) -> datetime:
    dt = datetime.fromisoformat(ts)
    return dt if dt.tzinfo else dt.astimezone()


def _what(ev: Claimed) -> str:
    return f"{ev.type} of {ev.item} at {ev.bookcase} (seq {ev.seq})"
