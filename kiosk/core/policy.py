"""Who may borrow what: patron keys, loan limits, and refusals worded for patrons (zh-CN and English)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

ACTIVE, BLOCKED, EXPIRED, LOST = "active", "blocked", "expired", "lost"

# What the patron reads, and what to do next. Short enough for a screen, plain enough for a child.
MESSAGES: dict[str, tuple[str, str]] = {
    "unknown_card": ("未能识别此读者证，请到图书馆服务台办理。",
                     "This card is not recognised. Please ask at the library's service desk."),
    "blocked": ("此读者证已暂停借阅，请到图书馆服务台咨询。",
                "Borrowing is paused on this card. Please ask at the library's service desk."),
    "expired": ("此读者证已过期，请到图书馆服务台续办。",
                "This card has expired. Please renew it at the library's service desk."),
    "lost": ("此读者证已挂失，请到图书馆服务台咨询。",
             "This card was reported lost. Please ask at the library's service desk."),
    "at_limit": ("您已借满 {limit} 册，本次只能还书。",
                 "You have reached your limit of {limit} books; you can still return books."),
    "welcome": ("您好！您还可以借 {may_borrow} 册。请选择柜门。",
                "Welcome! You may borrow {may_borrow} more books. Please choose a door."),
    "bad_scan": ("未能读取，请将读者证条码对准扫描窗口重试。",
                 "Could not read that. Please hold the card's barcode to the scanner again."),
    "no_door": ("暂时没有可用的柜门，请稍后再试。",
                "No door is available right now. Please try again later."),
}


def patron_key(secret: str, card_number: str) -> str:
    """HMAC-SHA256 of the card number with the library secret (DESIGN.md §7): no raw numbers at rest."""
    return hmac.new(secret.encode(), card_number.strip().encode(), hashlib.sha256).hexdigest()[:32]


def card_hint(card_number: str) -> str:
    """The last four digits, masked, for logs and screens."""
    return "****" + card_number.strip()[-4:]


@dataclass(frozen=True)
class Patron:
    key: str
    patron_class: str
    status: str
    loans_elsewhere: int = 0
    card_hint: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    may_borrow: int = 0
    limit: int = 0

    def message(self, lang: str = "zh") -> str:
        zh, en = MESSAGES[self.reason]
        return (zh if lang == "zh" else en).format(limit=self.limit, may_borrow=self.may_borrow)


class LoanPolicy:
    """Loan limits per patron class; refusals for unknown, blocked, expired and lost cards."""

    def __init__(self, default_limit: int = 15, class_limits: dict[str, int] | None = None) -> None:
        self.default_limit = default_limit
        self.class_limits = dict(class_limits or {})

    def limit_for(self, patron_class: str) -> int:
        return self.class_limits.get(patron_class, self.default_limit)

    def decide(self, patron: Patron | None, open_loans: int) -> Decision:
        if patron is None:
            return Decision(False, "unknown_card")
        if patron.status in (BLOCKED, EXPIRED, LOST):
            return Decision(False, patron.status)
        if patron.status != ACTIVE:
            return Decision(False, "blocked")
        limit = self.limit_for(patron.patron_class)
        may_borrow = max(0, limit - open_loans - patron.loans_elsewhere)
        # A patron at the limit may still open a door to return books; what they take anyway is
        # recorded as their loan (they have it) and flagged for staff as over_limit.
        return Decision(True, "welcome" if may_borrow else "at_limit", may_borrow, limit)
