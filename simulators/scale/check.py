"""The end check of a fleet run: nothing lost, nothing doubled, everyone agreeing.

1. ``ils_exactly_once``: for every item, the ILS's own list of transactions (what it applied over SIP2) is exactly
   the loans and returns that physically happened, in their order, each loan to the patron who took the book —
   every one once, none missing, none doubled. Each checkin's return date is the moment the bookcase recorded
   the return (to the second, SIP2's resolution) — or, where the ILS had ended that loan later and SIP2 cannot
   move it back, the gateway put that very return in the review queue for staff.
2. ``events_found``: each physical loan and return is one event in one bookcase's outbox (the current database
   or a replaced one), and the gateway journaled it from that bookcase with that patron.
3. ``outboxes_empty`` / ``acks_arrived``: no bookcase holds an unsent event, every event of a current database
   carries the gateway's answer, and every event of a replaced database is in the journal, done.
4. ``loan_counts``: for every card of the run, its open loans agree among what the patrons hold, the ILS, the
   gateway (its journal's open bookcase loans plus the loans elsewhere it publishes) and each bookcase that
   follows the fleet (its own and its peers' open loans plus the loans elsewhere it was told).
5. ``review_queue``: the review queue holds exactly what the model made ambiguous on purpose (beside the gateway's
   own flags: late returns, and late loans a killed gateway was sending, counted apart).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.journal.core import DEFERRED, SUPERSEDED, UNSURE
from kiosk.core.policy import patron_key
from kiosk.store.ledger import Store
from simulators.fleet.bookcases import SECRET

if TYPE_CHECKING:
    from simulators.scale.fleet import FleetRun

EXAMPLES = 12


@dataclass
class Finding:
    name: str
    ok: bool
    checked: int
    failures: int = 0
    summary: str = ""
    examples: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "checked": self.checked, "failures": self.failures,
                "summary": self.summary, "examples": self.examples[:EXAMPLES]}


def _second(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def transactions_of(dump: dict) -> list[dict]:
    """The ILS's own list of what it applied, from its dump (one JSON object a line)."""
    return [json.loads(line) for line in Path(dump["transactions"]).read_text(encoding="utf-8").splitlines()]


def check(run: FleetRun, dump: dict) -> list[Finding]:
    truth = run.visits.truth
    refused = run.refused_item
    transactions = transactions_of(dump)
    ils_loans: dict[str, str] = json.loads(Path(dump["loans"]).read_text(encoding="utf-8"))
    outbox = _outboxes(run)
    journal_rows = {r["id"]: r for r in run.journal.events("type IN ('loan', 'return')")}
    forgotten = _forgotten(run, truth, outbox, journal_rows)
    deferred = Counter((r["item"], r["patron"]) for r in journal_rows.values()
                       if r["state"] == "informational" and r["reason"] == DEFERRED)
    flagged = {(r["item"], _second(r["ts"])) for r in journal_rows.values()
               if r["reason"] == SUPERSEDED and r["review"] is not None}
    return [_exactly_once(run, truth, transactions, refused, deferred, flagged),
            _events(run, truth, outbox, journal_rows, refused),
            *_outbox_state(run), _loan_counts(run, ils_loans, forgotten), _reviews(run)]


def _forgotten(run: FleetRun, truth, outbox, journal_rows: dict) -> dict[str, Counter]:
    """Per replaced bookcase, per card: the loans still open at the end that reached the broker before its blank
    database did. The new database never hears of them: the fleet's events are not retained, and the library's
    patron status counts only the loans made outside the bookcases. (A gap of the design, reported by the check.)"""
    held = {(run.model.cards[u].number, i) for u, items in run.model.held.items() for i in items}
    last: dict[tuple[str, str], object] = {}
    for p in sorted(truth, key=lambda p: p.t):
        if p.kind == "loan":
            last[(p.card, p.item)] = p
    out: dict[str, Counter] = {}
    for bookcase, _, when in run.replaced:
        counter = out.setdefault(bookcase, Counter())
        for (card, item), p in last.items():
            if (card, item) not in held:
                continue
            ids = outbox.get(("loan", p.bookcase, p.session, p.item), [])
            row = journal_rows.get(ids[0]) if ids else None
            if row is not None and row["received_epoch"] < when and p.bookcase != bookcase:
                counter[card] += 1
            elif p.bookcase == bookcase and p.real < when:
                counter[card] += 1                   # its own loans from before: on the old card
    return out


def _pairs(steps: list[tuple[str, str | None, int | None]]) -> Counter:
    """An item's history as its loan periods: (patron, returned at — Unix second, None while out) each."""
    out: Counter = Counter()
    holder = None
    for kind, patron, when in steps:
        if kind == "checkout":
            if holder is not None:
                out[(holder, None, "not returned before the next loan")] += 1
            holder = patron
        else:
            out[(patron, when)] += 1
            holder = None
    if holder is not None:
        out[(holder, None)] += 1
    return out


def _exactly_once(run: FleetRun, truth, transactions: list[dict], refused: str | None,
                  deferred: Counter | None = None, flagged: set | None = None) -> Finding:
    holder = {item: card for card, items in run.model.desk_items().items() for item in items}
    expected: dict[str, list[tuple]] = defaultdict(list)
    for p in sorted(truth, key=lambda p: (p.t, p.kind == "loan")):
        if p.kind == "loan":
            holder[p.item] = p.card
            expected[p.item].append(("checkout", p.card, None))
        else:
            expected[p.item].append(("checkin", holder.get(p.item), p.t))
    actual: dict[str, list[dict]] = defaultdict(list)
    for t in transactions:
        if t["via"] == "sip2":
            actual[t["item"]].append(t)
    failures, examples, dates_wrong, checked = 0, [], 0, 0
    counts = Counter()
    deferred = deferred or Counter()
    cards = {patron_key(SECRET, c.number): c.number for c in run.model.cards} if deferred else {}
    for item in sorted(set(expected) | set(actual)):
        if item == refused:
            continue
        want = expected.get(item, [])
        got = actual.get(item, [])
        checked += len(want)
        if [(k, c) for k, c, _ in want] != [(t["kind"], t["patron"]) for t in got]:
            # A late loan of a book lent again since reaches the ILS after the later loan (docs/gateway.md): the
            # same loan periods, each returned at its own time, in another order. Until the book comes back it
            # waits in the journal ("deferred"): its period is not at the ILS yet.
            want_pairs = _pairs([(k, c, None if t is None else int(run.clock.at(t).timestamp())) for k, c, t in want])
            got_pairs = _pairs([(t["kind"], t["patron"], None if t["date"] is None else _second(t["date"]))
                                for t in got])
            waiting = Counter({cards.get(key): n for (it, key), n in deferred.items() if it == item})
            missing = want_pairs - got_pairs
            pending = Counter({p: n for p, n in missing.items() if p[0] in waiting})
            if not got_pairs - want_pairs and missing == pending and sum(pending.values()) <= sum(waiting.values()):
                counts["reordered"] += 1
                counts["waiting"] += sum(pending.values())
                continue
            failures += 1
            kinds_want = Counter(k for k, _, _ in want)
            kinds_got = Counter(t["kind"] for t in got)
            counts["missing"] += sum((kinds_want - kinds_got).values())
            counts["extra"] += sum((kinds_got - kinds_want).values())
            if kinds_want == kinds_got:
                counts["order_or_patron"] += 1
            if failures <= EXAMPLES // 2:
                examples.append({"item": item, "happened": [f"{k} {c or ''}".strip() for k, c, _ in want],
                                 "ils": [f"{t['kind']} {t['patron'] or ''}".strip() for t in got]})
            continue
        for (kind, _, t), tx in zip(want, got):
            if kind == "checkin" and (tx["date"] is None or _second(tx["date"]) != int(
                    run.clock.at(t).timestamp())):
                if (item, int(run.clock.at(t).timestamp())) in (flagged or ()):
                    # A return its bookcase published after the item's next event was applied: the ILS ended the
                    # loan then, SIP2 cannot move it back, and the gateway put it in the review queue for staff.
                    counts["flagged"] += 1
                    continue
                dates_wrong += 1
                if dates_wrong <= EXAMPLES // 2:
                    examples.append({"item": item, "return_date_at_ils": tx["date"],
                                     "returned_at": run.clock.at(t).isoformat()})
    if refused is not None and actual.get(refused):
        failures += 1
        examples.append({"item": refused, "note": "the ILS refuses this item, yet applied", "ils": actual[refused]})
    summary = (f"{checked} physical transactions over {len(expected)} items; items whose ILS history differs: "
               f"{failures} (missing {counts['missing']}, extra {counts['extra']}, order or patron "
               f"{counts['order_or_patron']}); return dates wrong: {dates_wrong}, and {counts['flagged']} later at "
               "the ILS than the real return, each in the review queue for staff (its bookcase was offline); late "
               f"loans recorded after a later loan of their book: {counts['reordered']} items, {counts['waiting']} "
               "still waiting for the book")
    return Finding("ils_exactly_once", failures == 0 and dates_wrong == 0, checked, failures + dates_wrong, summary,
                   examples)


def _outboxes(run: FleetRun) -> dict[tuple[str, str, str, str], list[str]]:
    """(type, bookcase, session, item) -> the ids of the loan and return events of every database, old and new."""
    found: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for path, bookcase in _databases(run):
        store = Store(path, bookcase)
        try:
            for (payload,) in store.db.execute("SELECT payload FROM outbox WHERE type IN ('loan', 'return')"):
                e = json.loads(payload)
                found[(e["type"], e["bookcase"], e["session"], e["item"])].append(e["id"])
        finally:
            store.close()
    return found


def _databases(run: FleetRun) -> list[tuple[Path, str]]:
    return [(bc.cfg.db_path, bc.id) for bc in run.bookcases] + [(old, bookcase) for bookcase, old, _ in run.replaced]


def _events(run: FleetRun, truth, outbox, journal_rows: dict, refused: str | None) -> Finding:
    failures, examples = 0, []
    for p in truth:
        ids = outbox.get((p.kind, p.bookcase, p.session, p.item), [])
        row = journal_rows.get(ids[0]) if len(ids) == 1 else None
        problem = None
        if len(ids) != 1:
            problem = f"{len(ids)} outbox events"
        elif row is None:
            problem = "not in the gateway's journal"
        elif row["bookcase"] != p.bookcase:
            problem = f"journaled from {row['bookcase']}"
        elif p.kind == "loan" and row["patron"] != patron_key(SECRET, p.card):
            problem = "journaled with another patron"
        elif row["state"] not in ("applied", "informational") and not (p.item == refused and row["state"] == "rejected"):
            problem = f"journal state {row['state']}"
        if problem:
            failures += 1
            examples.append({"kind": p.kind, "item": p.item, "bookcase": p.bookcase, "problem": problem})
    states = Counter(r["state"] + (f" ({r['reason']})" if r["state"] == "informational" and r.get("reason") else "")
                     for r in journal_rows.values())
    summary = (f"{len(truth)} physical transactions, each one outbox event journaled from its bookcase: "
               f"{len(truth) - failures}; journal states: " + ", ".join(f"{k} {v}" for k, v in states.most_common()))
    return Finding("events_found", failures == 0, len(truth), failures, summary, examples)


def _outbox_state(run: FleetRun) -> list[Finding]:
    unsent, unanswered, missing, rows = 0, 0, 0, 0
    examples: list = []
    journal_ids = None
    current = {bc.cfg.db_path for bc in run.bookcases}
    for path, bookcase in _databases(run):
        store = Store(path, bookcase)
        try:
            rows += store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
            n = store.outbox_depth()
            unsent += n
            if n:
                examples.append({"bookcase": bookcase, "database": path.name, "unsent": n})
            if path in current:
                k = store.db.execute("SELECT COUNT(*) FROM outbox WHERE gateway IS NULL").fetchone()[0]
                unanswered += k
                if k:
                    examples.append({"bookcase": bookcase, "database": path.name, "without_an_ack": k})
            else:
                if journal_ids is None:
                    journal_ids = {r["id"] for r in run.journal.events("state IN ('applied', 'informational', "
                                                                       "'rejected')")}
                ids = [i for (i,) in store.db.execute("SELECT id FROM outbox")]
                k = sum(1 for i in ids if i not in journal_ids)
                missing += k
                if k:
                    examples.append({"bookcase": bookcase, "database": path.name, "not_in_journal": k})
        finally:
            store.close()
    return [Finding("outboxes_empty", unsent == 0, rows, unsent, f"{rows} outbox events in {len(_databases(run))} "
                                                                   f"databases; unsent: {unsent}", examples),
            Finding("acks_arrived", unanswered == 0 and missing == 0, rows, unanswered + missing,
                    f"events without the gateway's answer: {unanswered}; events of replaced databases not done in "
                    f"the journal: {missing}", examples)]


def _loan_counts(run: FleetRun, ils_loans: dict[str, str], forgotten: dict[str, Counter]) -> Finding:
    ils = Counter(ils_loans.values())
    followers = [bc for bc in run.bookcases if bc.follows_fleet]
    stores = [Store(bc.cfg.db_path, bc.id) for bc in followers]
    failures, examples, checked = 0, [], 0
    refused = {run.refused_item} if run.refused_item else set()
    try:
        for user, card in enumerate(run.model.cards):
            key = patron_key(SECRET, card.number)
            held = run.model.outstanding(user)
            # The library never lent the item it has withdrawn (the loan is in the review queue): the ILS and the
            # gateway count one less for its holder than the patron's hands and the bookcases do.
            withdrawn = len(refused & run.model.held.get(user, set()))
            row = run.journal.patron(key)
            gateway = run.journal.open_bookcase_loans(key) + (row.loans_elsewhere if row else 0)
            counts = {"patron_holds": held, "ils": ils.get(card.number, 0) + withdrawn, "gateway": gateway + withdrawn}
            for bc, store in zip(followers, stores):
                p = store.patron(key)
                counts[bc.id] = store.open_loan_count(key) + (p.loans_elsewhere if p else 0) + \
                    forgotten.get(bc.id, Counter())[card.number]
            checked += 1
            if len(set(counts.values())) > 1:
                failures += 1
                if len(examples) < EXAMPLES:
                    odd = {k: v for k, v in counts.items() if v != held}
                    examples.append({"card": card.number[-4:].rjust(8, "*"), "patron_holds": held, "differ": odd})
    finally:
        for store in stores:
            store.close()
    gap = {b: sum(c.values()) for b, c in forgotten.items()}
    summary = (f"{checked} cards, compared among the patron's hands, the ILS, the gateway and {len(followers)} "
               f"bookcase(s) that follow the fleet: {checked - failures} agree" +
               "".join(f"; {b} (its database replaced) does not know {n} open loan(s) made before, counted in"
                       for b, n in gap.items()))
    return Finding("loan_counts", failures == 0, checked, failures, summary, examples)


def _reviews(run: FleetRun) -> Finding:
    got = Counter()
    rows = run.journal.review_list()
    late = unsure = 0
    for r in rows:
        payload = json.loads(r["payload"]) if r.get("payload") else {}
        if r["reason"] == SUPERSEDED:
            late += 1                      # a late return's date, for staff: ils_exactly_once matches each one
            continue
        if r["reason"] == UNSURE:
            unsure += 1                    # a late loan a killed gateway was sending: ils_exactly_once judges it
            continue
        if r["state"] == "rejected":
            got[("rejected", r["bookcase"], r["item"])] += 1
        elif r["type"] == "alarm":
            got[(payload.get("alarm"), r["bookcase"], None)] += 1
        else:
            got[(r["type"], r["bookcase"], None)] += 1
    want = Counter((e.kind, e.bookcase, e.item) for e in run.visits.expected)
    unexpected, absent = got - want, want - got
    examples = [{"unexpected": list(k), "count": v} for k, v in unexpected.items()] + \
        [{"expected_but_absent": list(k), "count": v} for k, v in absent.items()]
    summary = (f"{sum(got.values())} open in the review queue, {sum(want.values())} made ambiguous on purpose "
               f"({', '.join(f'{k[0]} at {k[1]}' for k in want) or 'none'}); unexpected: {sum(unexpected.values())}, "
               f"missing: {sum(absent.values())}; and {late} late return(s) whose date the ILS has later, "
               f"{unsure} late loan(s) a killed gateway was sending")
    return Finding("review_queue", not unexpected and not absent, sum(got.values()),
                   sum(unexpected.values()) + sum(absent.values()), summary, examples)
