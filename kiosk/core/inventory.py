"""Multi-round inventory reconciliation (docs/design.md §4.4) and what a session changed (§4.5)."""

from __future__ import annotations

from dataclasses import dataclass, field

PRESENT = "present"
UNCERTAIN = "uncertain"


class Reconciler:
    """Feeds inventory rounds until two consecutive rounds agree, or the round limit is reached.

    The agreed set is what is confirmed present. A tag seen in some round but not in the agreed set is
    *uncertain* (a weak tag, or one read through the wall from the next compartment). Without
    agreement, only the tags seen in every round count as present.
    """

    def __init__(self, max_rounds: int = 6) -> None:
        if max_rounds < 2:
            raise ValueError("need at least two rounds to compare")
        self.max_rounds = max_rounds
        self.rounds: list[frozenset[str]] = []

    def add_round(self, uids: frozenset[str] | set[str]) -> None:
        self.rounds.append(frozenset(uids))

    @property
    def agreed(self) -> bool:
        return len(self.rounds) >= 2 and self.rounds[-1] == self.rounds[-2]

    @property
    def done(self) -> bool:
        return self.agreed or len(self.rounds) >= self.max_rounds

    def result(self) -> tuple[frozenset[str], frozenset[str]]:
        """(present, uncertain) from the rounds so far."""
        if not self.rounds:
            return frozenset(), frozenset()
        seen = frozenset().union(*self.rounds)
        present = self.rounds[-1] if self.agreed else frozenset.intersection(*self.rounds)
        return present, seen - present


@dataclass(frozen=True)
class Holding:
    """One tag the bookcase believes is in a compartment."""
    uid: str
    item_id: str | None
    status: str = PRESENT          # present | uncertain
    origin: str = PRESENT          # for uncertain tags: was it present before (possible loan) or not (possible return)


@dataclass
class Changes:
    """What a closed door's inventory means, against the before-inventory."""
    removed: list[Holding] = field(default_factory=list)         # confirmed gone: loans (or missing)
    added: list[Holding] = field(default_factory=list)           # confirmed arrived: returns
    foreign_added: list[Holding] = field(default_factory=list)   # arrived, but no library item on the tag
    foreign_removed: list[Holding] = field(default_factory=list)
    newly_uncertain: list[Holding] = field(default_factory=list)
    resolved_present: list[Holding] = field(default_factory=list)  # an uncertain tag now seen for sure
    missing: list[Holding] = field(default_factory=list)          # an uncertain tag now confirmed gone
    after: dict[str, Holding] = field(default_factory=dict)       # the compartment's holdings from now on


def compare(before: dict[str, Holding], present: frozenset[str], uncertain: frozenset[str],
            item_ids: dict[str, str | None]) -> Changes:
    """Classify every tag by its before and after status.

    ``item_ids`` gives the item id read from each new tag (None when its memory does not decode).
    Uncertain tags are never charged: they wait, flagged, for a later scan to settle them.
    """
    ch = Changes()
    for uid in sorted(set(before) | present | uncertain):
        old = before.get(uid)
        item_id = (old.item_id if old is not None else None) or item_ids.get(uid)
        if uid in present:
            holding = Holding(uid, item_id)
            ch.after[uid] = holding
            if old is None or (old.status == UNCERTAIN and old.origin != PRESENT):
                (ch.added if item_id is not None else ch.foreign_added).append(holding)
            elif old.status == UNCERTAIN:
                ch.resolved_present.append(holding)
        elif uid in uncertain:
            origin = old.origin if old is not None and old.status == UNCERTAIN else (
                PRESENT if old is not None else "absent")
            holding = Holding(uid, item_id, UNCERTAIN, origin)
            ch.after[uid] = holding
            if old is None or old.status != UNCERTAIN:
                ch.newly_uncertain.append(holding)
        else:
            assert old is not None
            if old.status == UNCERTAIN:
                if old.origin == PRESENT:
                    ch.missing.append(old)
            elif item_id is None:
                ch.foreign_removed.append(old)
            else:
                ch.removed.append(old)
    return ch
