"""Loan policy: limits per class and refusals a patron understands."""

import pytest

from kiosk.core.policy import MESSAGES, LoanPolicy, Patron, card_hint, patron_key

POLICY = LoanPolicy(15, {"adult": 15, "branch": 10, "child": 10})


def patron(status="active", cls="adult", elsewhere=0):
    return Patron("k", cls, status, elsewhere)


@pytest.mark.parametrize("status", ["blocked", "expired", "lost", "suspended-by-mistake"])
def test_refused_statuses(status):
    d = POLICY.decide(patron(status), 0)
    assert not d.allowed
    assert "服务台" in d.message("zh") and "service desk" in d.message("en")


def test_unknown_card_refused():
    d = POLICY.decide(None, 0)
    assert (d.allowed, d.reason) == (False, "unknown_card")


@pytest.mark.parametrize("cls,local,elsewhere,expected", [
    ("adult", 0, 0, 15), ("branch", 3, 2, 5), ("child", 0, 10, 0), ("adult", 14, 0, 1), ("unknown", 0, 0, 15)])
def test_may_borrow(cls, local, elsewhere, expected):
    d = POLICY.decide(patron(cls=cls, elsewhere=elsewhere), local)
    assert d.allowed and d.may_borrow == expected


def test_at_limit_may_still_return_and_is_told_so():
    d = POLICY.decide(patron(cls="branch"), 10)
    assert d.allowed and d.may_borrow == 0 and d.reason == "at_limit"
    assert "10" in d.message("zh") and "return" in d.message("en")


def test_patron_key_is_keyed_and_hides_the_number():
    k1, k2 = patron_key("secret-one-123456", "3101120000018"), patron_key("secret-two-123456", "3101120000018")
    assert k1 != k2 and "3101120000018" not in k1 and len(k1) == 32
    assert patron_key("secret-one-123456", " 3101120000018\r") == k1
    assert card_hint("3101120000018") == "****0018"


def test_every_message_has_both_languages():
    for zh, en in MESSAGES.values():
        assert zh and en and zh != en
