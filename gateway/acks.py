"""Batched acks on <root>central/ack/<bookcase>: what the gateway applied, found duplicate, or rejected, and why.

The journal is the truth: an event's ack is due from the moment its outcome is recorded until the broker
acknowledged the ack message (QoS 1, PUBACK) — a gateway that dies in between sends it after its restart (or
another gateway does, once the first one's lease on it runs out). Results wait up to [acks] delay_ms to share a
message, at most [acks] batch per message. Copies of events already journaled are answered "duplicate" from
memory (losing such an answer in a crash loses nothing: the first copy's ack stands).

Each result: ``{"event", "seq", "status": applied | duplicate | rejected, "reason", "due"}`` (kiosk.sync.schema
"ack"); ``due`` is the ILS's due date of a loan, which the bookcase records on the loan.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict

from gateway.consumer import Publisher
from gateway.journal import Journal, now_iso
from kiosk.sync import schema
from kiosk.sync.topics import Topics

LOGGER = logging.getLogger(__name__)

PUBACK_TIMEOUT_S = 10.0
CLAIM_LIMIT = 2000
IDLE_S = 1.0


def result(row: dict) -> dict:
    """A journal row -> one ack result."""
    state = row["state"]
    out: dict = {"event": row["id"], "seq": row["seq"],
                 "status": "rejected" if state in ("rejected", "refused") else "applied"}
    reason = row.get("reason")
    if state == "informational" and row["type"] in ("loan", "return"):
        reason = f"informational: {reason}" if reason else "informational"
    if reason:
        out["reason"] = reason[:500]
    if row.get("due") and state == "applied":
        out["due"] = row["due"]
    return out


class Acker:
    """One thread: claims due acks from the journal, publishes them per bookcase, marks them on PUBACK."""

    def __init__(self, journal: Journal, publisher: Publisher, topics: Topics, owner: str, batch: int,
                 delay_ms: int) -> None:
        self.journal = journal
        self.publisher = publisher
        self.topics = topics
        self.owner = owner
        self.batch = batch
        self.delay_s = delay_ms / 1000
        self.sent_messages = 0
        self.sent_results = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._dups: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"{owner}-acks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Send what is due (briefly), then stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(PUBACK_TIMEOUT_S + 5)

    def wake(self) -> None:
        self._wake.set()

    def duplicate(self, bookcase: str, event_id: str, seq: int) -> None:
        with self._lock:
            self._dups.append((bookcase, event_id, seq))
        self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(IDLE_S)
            stopping = self._stop.is_set()
            if not stopping and self.delay_s:
                time.sleep(self.delay_s)        # let the results of a burst share a message
            self._wake.clear()
            try:
                while self.flush() and not self._stop.is_set():
                    pass
                if stopping:
                    self.flush()
            except Exception:
                LOGGER.exception("%s: error while sending acks; they stay due in the journal", self.owner)
            if stopping:
                return

    def flush(self) -> bool:
        """Send one round of due acks; True if there may be more."""
        if self.publisher.gen is None:
            return False
        rows = self.journal.claim_acks(self.owner, CLAIM_LIMIT)
        with self._lock:
            dups, self._dups = self._dups, []
        by_case: dict[str, list[tuple[str | None, dict]]] = defaultdict(list)
        for row in rows:
            by_case[row["bookcase"]].append((row["id"], result(row)))
        for bookcase, event_id, seq in dups:
            by_case[bookcase].append((None, {"event": event_id, "seq": seq, "status": "duplicate"}))
        waiting: list[tuple[list[str], object]] = []
        failed: list[str] = []
        for bookcase, items in by_case.items():
            for i in range(0, len(items), self.batch):
                chunk = items[i:i + self.batch]
                ids = [e for e, _ in chunk if e is not None]
                pending = self._publish(bookcase, [r for _, r in chunk])
                if pending is None:
                    failed += ids
                else:
                    waiting.append((ids, pending))
        for ids, pending in waiting:
            if pending.wait(PUBACK_TIMEOUT_S):      # type: ignore[attr-defined]
                self.journal.mark_acked(ids, self.owner)
                self.sent_messages += 1
                self.sent_results += len(ids)
            else:
                failed += ids
        if failed:
            self.journal.release_acks(failed, self.owner)
            return False
        return len(rows) == CLAIM_LIMIT

    def _publish(self, bookcase: str, results: list[dict]):
        msg = {"v": schema.VERSION, "id": str(uuid.uuid4()), "ts": now_iso(), "type": "ack", "bookcase": bookcase,
               "results": results}
        try:
            schema.check_message("ack", msg)
        except schema.MessageError as exc:
            LOGGER.error("%s: an ack for bookcase %s does not fit the schema (%s); not sent", self.owner, bookcase,
                         exc)
            return None
        return self.publisher.publish(self.topics.ack(bookcase), schema.encode(msg))
