"""kiosk.demodata: deterministic, unique, and looking like the Minhang District Library's stock."""

from __future__ import annotations

import re

import pytest

from kiosk.core.policy import STATUSES
from kiosk.demodata import DEMO_ISIL, PATRON_CLASS_LIMITS, demo_books, demo_patrons, uid_for


def test_books_are_deterministic_unique_and_spread_over_the_doors() -> None:
    books = demo_books([1, 2, 3, 4, 5, 6])
    assert books == demo_books([1, 2, 3, 4, 5, 6])
    assert len(books) == 360
    ids = [b.item_id for b in books]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"MH2020\d{4}", i) for i in ids)
    assert ids[0] == "MH20200001"
    assert {b.door for b in books} == {1, 2, 3, 4, 5, 6}
    assert all(sum(b.door == d for b in books) == 60 for d in range(1, 7))


def test_recommended_titles_come_in_several_copies() -> None:
    titles = [b.title for b in demo_books([1, 2, 3, 4, 5, 6])]
    assert titles.count("我心归处是敦煌") >= 3
    assert titles.count("咕咚来了") >= 3
    dunhuang = next(b for b in demo_books([1]) if b.title == "我心归处是敦煌")
    assert "樊锦诗" in dunhuang.author and "顾春芳" in dunhuang.author


def test_books_per_door_and_bad_arguments() -> None:
    assert [b.door for b in demo_books([3, 7], per_door=2)] == [3, 3, 7, 7]
    assert demo_books([1], per_door=0) == []
    with pytest.raises(ValueError):
        demo_books([1, 1])
    with pytest.raises(ValueError):
        demo_books([1], per_door=-1)


def test_patrons_cover_classes_statuses_and_the_limit() -> None:
    patrons = demo_patrons()
    assert 6 <= len(patrons) <= 14
    # Barcode card numbers (13 digits) and contactless card UIDs (7-byte NXP, upper-case hex).
    assert all(re.fullmatch(r"\d{13}|04[0-9A-F]{12}", p.card_number) for p in patrons)
    assert any(p.card_number.startswith("04") for p in patrons)
    assert len({p.card_number for p in patrons}) == len(patrons)
    assert {p.patron_class for p in patrons} == {"adult", "branch", "child"}
    assert {p.status for p in patrons} == set(STATUSES)
    assert PATRON_CLASS_LIMITS == {"adult": 15, "branch": 10, "child": 10}
    near_limit = [p for p in patrons if p.patron_class == "adult" and p.loans_elsewhere == 14]
    assert near_limit and near_limit[0].status == "active" and near_limit[0].loan_limit == 15


def test_uids_are_iso15693_nxp_and_stable() -> None:
    uid = uid_for("MH20200001")
    assert len(uid) == 8 and uid[:2] == b"\xe0\x04"
    assert uid == uid_for("MH20200001") != uid_for("MH20200002")
    assert DEMO_ISIL == "CN-310112"
