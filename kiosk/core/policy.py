"""Who may borrow what: patron keys, loan limits, and refusals worded for patrons (zh-CN and English)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

ACTIVE, BLOCKED, EXPIRED, LOST, OVERDUE = "active", "blocked", "expired", "lost", "overdue"
STATUSES = (ACTIVE, BLOCKED, EXPIRED, LOST, OVERDUE)

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
    "overdue": ("您有逾期未还的图书，请先归还后再借。本次只能还书。",
                "You have overdue books. Please return them first; you can return books now."),
    "offline_unknown": ("书柜暂时无法联网，无法核实此读者证。请稍后再试或到图书馆服务台办理。",
                        "The bookcase is offline and cannot check this card. Please try later "
                        "or ask at the library's service desk."),
    "offline_cap": ("书柜暂时离线，本次最多再借 {may_borrow} 册。",
                    "The bookcase is offline: you may borrow {may_borrow} more books this time."),
    "offline_at_cap": ("书柜暂时离线，您离线借阅已达上限，本次只能还书。",
                       "The bookcase is offline and you have reached the offline limit; "
                       "you can still return books."),
    "ecard_malformed": ("未能识别此二维码，请刷新电子读者证后重试。",
                        "This QR code could not be read. Please refresh your e-card and try again."),
    "ecard_forged": ("此二维码无效，请使用闵图微信公众号中的电子读者证。",
                     "This QR code is not valid. Please use the e-card in the library's WeChat account."),
    "ecard_expired": ("二维码已过期，请在手机上刷新电子读者证后重试。",
                      "This QR code has expired. Please refresh the e-card on your phone and scan again."),
    "ecard_used": ("此二维码已使用过，请刷新电子读者证后重试。",
                   "This QR code was already used. Please refresh your e-card and scan again."),
    "ecard_unsupported": ("本书柜暂不支持电子读者证，请刷实体读者证。",
                          "This bookcase does not accept e-cards yet. Please tap your library card."),
    "return_only": ("请选择柜门，放入要归还的图书后关门。",
                    "Please choose a door, put in the books you are returning, and close the door."),
    # An unlock the board did not answer: the door may have opened, or not (kiosk.core.doors).
    "door_failed": ("柜门没有应答，正在检查。请选择其他柜门；如果柜门已打开，请照常取书后关好柜门。",
                    "That door did not answer: we are checking it. Please choose another door or, if it "
                    "opened, take your books and close it as usual."),
    "pending": ("正在核对图书，稍后自动完成，您可以离开了。",
                "Your books are being checked; this finishes on its own. You may leave."),
    "out_of_order": ("书柜暂时无法借还，请稍后再试或到图书馆服务台办理。",
                     "The bookcase cannot lend or take back books right now. Please try later "
                     "or ask at the library's service desk."),
    "staff_pin_wrong": ("密码错误，请重试。", "Wrong PIN. Please try again."),
    "staff_locked": ("密码错误次数过多，请稍后再试。", "Too many wrong PINs. Please try again later."),
}


def patron_key(secret: str, card_number: str) -> str:
    """HMAC-SHA256 of the card number with the library secret (docs/design.md §7): no raw numbers at rest."""
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
        zh, en = MESSAGES.get(self.reason, MESSAGES["no_door"])
        return (zh if lang == "zh" else en).format(limit=self.limit, may_borrow=self.may_borrow)


class LoanPolicy:
    """Loan limits per patron class; refusals for unknown, blocked, expired and lost cards."""

    def __init__(self, default_limit: int = 15, class_limits: dict[str, int] | None = None,
                 offline_extra_loans: int = 5) -> None:
        self.default_limit = default_limit
        self.class_limits = dict(class_limits or {})
        self.offline_extra_loans = offline_extra_loans

    def limit_for(self, patron_class: str) -> int:
        return self.class_limits.get(patron_class, self.default_limit)

    def decide(self, patron: Patron | None, open_loans: int, *, offline: bool = False,
               offline_loans: int = 0) -> Decision:
        """May this patron open a door, and borrow how many more?

        ``open_loans`` counts the bookcase network's open loans of the patron; ``loans_elsewhere`` on the
        patron those the library knows of from its desks. Offline, only patrons in the cache may borrow,
        and at most ``offline_extra_loans`` books in all (``offline_loans`` made since the library last
        confirmed the patron's status) until the bookcase syncs again.
        """
        if patron is None:
            return Decision(False, "offline_unknown" if offline else "unknown_card")
        if patron.status in (BLOCKED, EXPIRED, LOST):
            return Decision(False, patron.status)
        if patron.status not in (ACTIVE, OVERDUE):
            return Decision(False, "blocked")
        limit = self.limit_for(patron.patron_class)
        may_borrow = max(0, limit - open_loans - patron.loans_elsewhere)
        # A patron who may not borrow may still open a door to return books; what they take anyway is
        # recorded as their loan (they have it) and flagged for staff as over_limit.
        if patron.status == OVERDUE:
            return Decision(True, "overdue", 0, limit)
        if offline:
            cap = max(0, self.offline_extra_loans - offline_loans)
            if cap < may_borrow:
                return Decision(True, "offline_cap" if cap else "offline_at_cap", cap, limit)
        return Decision(True, "welcome" if may_borrow else "at_limit", may_borrow, limit)
