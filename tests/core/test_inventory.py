"""Inventory reconciliation and before/after classification (docs/design.md §4.4-4.5)."""

from hypothesis import given, strategies as st

from kiosk.core.inventory import PRESENT, UNCERTAIN, Holding, Reconciler, compare

UIDS = st.sampled_from([f"E004{i:012X}" for i in range(12)])
ROUND = st.frozensets(UIDS, max_size=12)


def test_two_agreeing_rounds_end_the_inventory():
    rec = Reconciler(max_rounds=6)
    rec.add_round({"A", "B"})
    assert not rec.done
    rec.add_round({"A", "B"})
    assert rec.done and rec.agreed
    assert rec.result() == ({"A", "B"}, frozenset())


def test_a_tag_seen_once_then_gone_is_uncertain():
    rec = Reconciler(max_rounds=6)
    for r in ({"A", "B", "X"}, {"A", "B"}, {"A", "B"}):
        rec.add_round(r)
    assert rec.result() == ({"A", "B"}, {"X"})


def test_alternating_tag_never_agrees_and_stays_uncertain():
    rec = Reconciler(max_rounds=5)
    for i in range(10):
        if rec.done:
            break
        rec.add_round({"A", "F"} if i % 2 else {"A"})
    assert len(rec.rounds) == 5 and not rec.agreed
    assert rec.result() == ({"A"}, {"F"})


@given(st.lists(ROUND, min_size=1, max_size=8), st.integers(2, 8))
def test_reconciler_properties(rounds, max_rounds):
    rec = Reconciler(max_rounds)
    for r in rounds:
        if rec.done:
            break
        rec.add_round(r)
    present, uncertain = rec.result()
    seen = frozenset().union(*rec.rounds)
    assert present | uncertain == seen
    assert not present & uncertain
    assert len(rec.rounds) <= max_rounds
    # Present tags were seen in the last round: nothing counts as present on old evidence alone.
    assert present <= rec.rounds[-1]


def _h(uid, item="I" , status=PRESENT, origin=PRESENT):
    return Holding(uid, item + uid, status, origin)


def test_removed_added_and_foreign():
    before = {"A": _h("A"), "B": _h("B"), "J": Holding("J", None)}
    ch = compare(before, frozenset({"A", "N", "Z"}), frozenset(), {"N": "IN", "Z": None})
    assert [h.uid for h in ch.removed] == ["B"]
    assert [h.uid for h in ch.added] == ["N"]
    assert [h.uid for h in ch.foreign_added] == ["Z"]
    assert [h.uid for h in ch.foreign_removed] == ["J"]
    assert set(ch.after) == {"A", "N", "Z"}


def test_uncertain_is_never_charged_and_later_settles():
    before = {"A": _h("A"), "B": _h("B")}
    ch = compare(before, frozenset({"A"}), frozenset({"B", "C"}), {"C": "IC"})
    assert ch.removed == [] and ch.added == []
    assert {h.uid: h.origin for h in ch.newly_uncertain} == {"B": PRESENT, "C": "absent"}
    # Next scan: B is gone for sure -> missing, not a loan; C is there for sure -> a return.
    ch2 = compare(ch.after, frozenset({"A", "C"}), frozenset(), {})
    assert [h.uid for h in ch2.missing] == ["B"]
    assert ch2.removed == []
    assert [h.uid for h in ch2.added] == ["C"]
    # Or: B is back for sure -> just resolved, nothing charged or returned.
    ch3 = compare(ch.after, frozenset({"A", "B"}), frozenset(), {})
    assert [h.uid for h in ch3.resolved_present] == ["B"] and ch3.added == [] and ch3.missing == []
    assert ch3.after["B"].status == PRESENT


@given(st.frozensets(UIDS), st.frozensets(UIDS), st.frozensets(UIDS))
def test_compare_accounts_for_every_tag_once(before_uids, present, maybe):
    uncertain = maybe - present
    before = {u: _h(u) for u in before_uids}
    ch = compare(before, present, uncertain, {u: "I" + u for u in present | uncertain})
    gone = [h.uid for h in ch.removed + ch.foreign_removed + ch.missing]
    assert len(gone) == len(set(gone))
    assert set(gone) == before_uids - present - uncertain
    assert set(ch.after) == present | uncertain
    assert {h.uid for h in ch.added} == present - before_uids
    assert all(ch.after[u].status == UNCERTAIN for u in uncertain)
