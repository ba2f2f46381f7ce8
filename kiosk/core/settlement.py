"""What a closed session changes (docs/design.md §4.5): loans, returns, restock moves, missing and foreign items,
uncertain tags and alarms, worked out from the before-inventory and the final count. Pure: no I/O, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from kiosk.core import events as ev
from kiosk.core.inventory import UNCERTAIN, Holding, compare
from kiosk.core.records import PATRON, RESTOCK_KIND, RETURN, STOCKTAKE, SessionRecord, Settlement
from kiosk.core.snapshot import Receipt


def build_settlement(record: SessionRecord, result: ev.ScanResult, item_ids: dict[str, str | None],
                     now: datetime, loan_days: int) -> Settlement:
    """The settlement of ``record`` after the count ``result``; ``item_ids`` names tags read before but not in
    this count. Its events are the session's outbox events, ``session_closed`` last."""
    item_ids = {**item_ids, **{uid: info.item_id for uid, info in result.tags.items()}}
    ch = compare(record.before, result.present, result.uncertain, item_ids)
    due = (now + timedelta(days=loan_days)).date().isoformat()
    loans: tuple[Holding, ...] = ()
    missing = list(ch.missing)
    stocked: list[Holding] = []
    unstocked: list[Holding] = []
    if record.kind == PATRON:
        loans = tuple(ch.removed)
    elif record.kind == RESTOCK_KIND:
        # Staff work is neither loans nor returns: books in and out are restock events, and an
        # uncertain tag now confirmed gone was taken out by staff, not lost.
        stocked, unstocked, missing = list(ch.added), [*ch.removed, *missing], []
        ch.added = []
    else:
        missing.extend(ch.removed)
    if record.kind == STOCKTAKE:
        ch.added, ch.foreign_added = [], []
    events: list[dict] = []
    base = {"session": record.id, "door": record.door}
    for h in loans:
        events.append({"type": "loan", **base, "item": h.item_id, "uid": h.uid, "patron": record.patron_key,
                       "due": due})
    for h in ch.added:
        events.append({"type": "return", **base, "item": h.item_id, "uid": h.uid})
    for change, held in (("added", stocked), ("removed", unstocked)):
        for h in held:
            events.append({"type": "restock", **base, "change": change, "item": h.item_id, "uid": h.uid,
                           "staff": record.patron_key})
    if record.kind == RETURN and ch.removed:
        events.append({"type": "alarm", "alarm": "taken_without_card", **base, "count": len(ch.removed)})
    for h in missing:
        events.append({"type": "item_missing", **base, "item": h.item_id, "uid": h.uid})
    for h in ch.foreign_added + ch.foreign_removed:
        info = result.tags.get(h.uid)
        events.append({"type": "foreign_object", **base, "uid": h.uid,
                       "change": "added" if h in ch.foreign_added else "removed",
                       "reason": info.error if info and info.error else "no library item on the tag"})
    for h in ch.newly_uncertain:
        events.append({"type": "uncertain_tag", **base, "item": h.item_id, "uid": h.uid, "origin": h.origin})
    if record.kind == PATRON and len(loans) > record.may_borrow:
        events.append({"type": "alarm", "alarm": "over_limit", **base, "patron": record.patron_key,
                       "borrowed": len(loans), "may_borrow": record.may_borrow})
    summary = {"loans": len(loans), "returns": len(ch.added), "missing": len(missing),
               "restocked": len(stocked), "unstocked": len(unstocked),
               "foreign": len(ch.foreign_added) + len(ch.foreign_removed),
               "uncertain": sum(1 for h in ch.after.values() if h.status == UNCERTAIN),
               "rounds": result.rounds, "agreed": result.agreed, "books_after": len(ch.after)}
    events.append({"type": "session_closed", **base, "kind": record.kind, "patron": record.patron_key, **summary})
    return Settlement(session=record, closed_at=now.isoformat(timespec="milliseconds"), due_at=due, loans=loans,
                      returns=tuple(ch.added), missing=tuple(missing), after=ch.after, tags=dict(result.tags),
                      events=tuple(events), summary=summary)


def receipt_lines(record: SessionRecord, receipt: Receipt, summary: dict) -> list[str]:
    """The log lines of a settled session's receipt: one for the whole, one per book, then what needs staff."""
    who = f"card {record.card_hint}" if record.kind == PATRON else f"{record.kind} session"
    lines = [f"door {record.door}: receipt for {who}: borrowed {len(receipt.borrowed)}, "
             f"returned {len(receipt.returned)}"]
    lines += [f"door {record.door}: borrowed {item} 《{title or '?'}》 due {due}"
              for item, title, due in receipt.borrowed]
    lines += [f"door {record.door}: returned {item} 《{title or '?'}》" for item, title in receipt.returned]
    if summary["missing"]:
        lines.append(f"door {record.door}: {summary['missing']} item(s) recorded as missing")
    if summary["foreign"]:
        lines.append(f"door {record.door}: {summary['foreign']} foreign object(s) for staff to check")
    if receipt.uncertain:
        lines.append(f"door {record.door}: {receipt.uncertain} uncertain tag(s) held for staff, not charged")
    return lines
