"""Sample snapshots for every screen: screenshots, the layout tests, and moments the core does not produce yet."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from kiosk import __version__
from kiosk.core.snapshot import Diagnostics, Receipt, Snapshot, StaffView
from kiosk.core.policy import MESSAGES
from kiosk.ui.screens.base import Found

LOGGER = logging.getLogger(__name__)

NOW = 960.0                                    # the sample clock (time.monotonic() stand-in)
BOOKCASE_NAME = "闵行区图书馆城市书柜 · 莘庄镇康城社区"
DOORS = (1, 2, 3, 4, 5, 6)

# `kiosk screenshot --state` names: the ten, then the extra pages.
STATES = ("attract", "identifying", "refused", "door_open", "scanning", "receipt", "out_of_service", "staff_pin",
          "staff_restock", "diagnostics", "choosing", "find", "help")


@dataclass(frozen=True)
class Sample:
    """A snapshot and what the screen itself holds (page opened, search answer, PIN typed, door chosen)."""
    snap: Snapshot
    page: str | None = None
    found: Found | None = None
    pin: str = ""
    chosen: int | None = None
    extra: dict = field(default_factory=dict)


# As kiosk.app reports them: (device, link up, the driver's last message).
DEVICES = (("lockboard", True, "lock board on /dev/ttyUSB0: connected"),
           ("pcsc", True, "card reader 'ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00': ready"),
           ("rfid", True, "RFID readers on /dev/ttyUSB1: connected"),
           ("scanner", False, "scanner on /dev/ttyACM0: cannot open the port ([Errno 2] could not open port "
                              "/dev/ttyACM0: [Errno 2] No such file or directory: '/dev/ttyACM0'); retrying every 1 s"))


def _diagnostics() -> Diagnostics:
    return Diagnostics(version=__version__, bookcase_id="MH-0001", bookcase_name=BOOKCASE_NAME,
                       devices=DEVICES, outbox_depth=17, online=False, last_sync="2026-11-25 18:42", disk_free_mb=5120,
                       content_version=1796064805, content_result="refused")


def samples(now: float = NOW) -> dict[str, Sample]:
    """One sample per screenshot state."""
    idle = Snapshot(state="idle", doors_in_service=DOORS)
    borrower = dict(may_borrow=12, limit=15, reason="welcome", kind="patron", doors_in_service=DOORS)
    found = Found("我心归处是敦煌", (
        {"item_id": "MH20200013", "title": "我心归处是敦煌", "author": "樊锦诗 口述；顾春芳 撰写", "door": 2},
        {"item_id": "MH20200014", "title": "我心归处是敦煌", "author": "樊锦诗 口述；顾春芳 撰写", "door": 2},
        {"item_id": "MH20200015", "title": "我心归处是敦煌", "author": "樊锦诗 口述；顾春芳 撰写", "door": 5}))
    return {
        "attract": Sample(idle),
        "identifying": Sample(Snapshot(state="identifying", doors_in_service=DOORS)),
        "choosing": Sample(Snapshot(state="choosing", until=now + 24, **{**borrower, "doors_in_service": (1, 2, 3, 5, 6)},
                                    doors_out_of_service=(4,))),
        "refused": Sample(Snapshot(state="refused", reason="expired", until=now + 6, doors_in_service=DOORS)),
        "door_open": Sample(Snapshot(state="door_open", door=2, until=now + 25, **borrower)),
        "scanning": Sample(Snapshot(state="scanning", door=2, **borrower)),
        "receipt": Sample(Snapshot(state="receipt", door=2, until=now + 7, **borrower, receipt=Receipt(
            borrowed=(("MH20200013", "我心归处是敦煌", "2026-12-25"), ("MH20200034", "数学的故事", "2026-12-25")),
            returned=(("MH20200101", "草房子"),)))),
        "out_of_service": Sample(Snapshot(state="idle", out_of_service=True, doors_out_of_service=DOORS)),
        "staff_pin": Sample(Snapshot(state="staff_pin", staff=StaffView()), pin="12"),
        "staff_restock": Sample(Snapshot(state="staff_restock", kind="restock", doors_in_service=DOORS,
                                         staff=StaffView(doors_open=(1, 3), counting=(2,),
                                                         summary=((4, 12, 3), (5, 8, 0), (6, 0, 0))))),
        "diagnostics": Sample(Snapshot(state="staff_restock", kind="restock", doors_in_service=DOORS,
                                       staff=StaffView(), diagnostics=_diagnostics()), page="diagnostics"),
        "find": Sample(idle, page="find", found=found),
        "help": Sample(idle, page="help"),
    }


def variants(now: float = NOW) -> dict[str, Sample]:
    """Harder cases for the layout tests: every refusal, long receipts, a held door, eight doors, errors."""
    base = samples(now)
    out = dict(base)
    for reason in MESSAGES:
        out[f"refused-{reason}"] = Sample(replace(base["refused"].snap, reason=reason, may_borrow=3, limit=15))
    out["refused-unknown-reason"] = Sample(replace(base["refused"].snap, reason="something_new"))
    out["choosing-at_limit"] = Sample(replace(base["choosing"].snap, reason="at_limit", may_borrow=0))
    out["choosing-door_failed"] = Sample(replace(base["choosing"].snap, reason="door_failed"))
    out["choosing-8-doors"] = Sample(replace(base["choosing"].snap, doors_in_service=(1, 2, 3, 4, 5, 6, 7),
                                             doors_out_of_service=(8,)))
    out["door_open-held"] = Sample(replace(base["door_open"].snap, held_open=True, until=now + 42))
    out["door_open-return"] = Sample(replace(base["door_open"].snap, kind="return", may_borrow=0, limit=0))
    out["door_open-at-limit"] = Sample(replace(base["door_open"].snap, may_borrow=0, reason="at_limit"))
    long_titles = ("思君令人老，努力加餐饭", "去北极，在冰川消失前", "上海闵行红色地图", "开罗埃及博物馆", "DK蘑菇大百科")
    borrowed = tuple((f"MH2020{i:04d}", long_titles[i % len(long_titles)], "2026-12-25") for i in range(15))
    returned = tuple((f"MH2021{i:04d}", long_titles[i % len(long_titles)]) for i in range(6))
    out["receipt-long"] = Sample(replace(base["receipt"].snap, receipt=Receipt(borrowed=borrowed, returned=returned,
                                                                               uncertain=2)))
    out["receipt-pending"] = Sample(replace(base["receipt"].snap, receipt=Receipt(pending=True)))
    out["receipt-nothing"] = Sample(replace(base["receipt"].snap, receipt=Receipt()))
    out["receipt-untitled"] = Sample(replace(base["receipt"].snap, receipt=Receipt(
        borrowed=(("MH20209999", "", "2026-12-25"),), returned=(("MH20209998", ""),))))
    out["attract-offline-door-out"] = Sample(replace(base["attract"].snap, offline=True, doors_in_service=(1, 2, 3, 5, 6),
                                                     doors_out_of_service=(4,)))
    out["attract-chosen"] = Sample(base["attract"].snap, chosen=3)
    out["out_of_service-some"] = Sample(replace(base["out_of_service"].snap, doors_in_service=(5,),
                                                doors_out_of_service=(1, 2, 3, 4, 6)))
    out["staff_pin-error"] = Sample(replace(base["staff_pin"].snap, staff=StaffView(pin_digits=4, pin_error=True)))
    out["diagnostics-five-devices"] = Sample(replace(base["diagnostics"].snap, diagnostics=replace(
        _diagnostics(), online=True, last_sync=None, disk_free_mb=None,
        devices=DEVICES + (("mqtt", True, "connected to mqtt.library.example:8883"),))), page="diagnostics")
    out["diagnostics-none"] = Sample(replace(base["diagnostics"].snap, diagnostics=None), page="diagnostics")
    out["find-none"] = Sample(base["find"].snap, page="find", found=Found("杂草记"))
    out["find-elsewhere"] = Sample(base["find"].snap, page="find", found=Found("杂草记", tuple(
        {"bookcase": bookcase, "name": f"闵行区图书馆城市书柜 · {site}", "item_id": item, "title": "杂草记", "door": door}
        for bookcase, site, item, door in (("MH-0102", "七宝镇万科城市花园", "MH20200611", 2),
                                           ("MH-0102", "七宝镇万科城市花园", "MH20200612", 3),
                                           ("MH-0107", "虹桥镇龙柏社区文化活动中心", "MH20201207", 1),
                                           ("MH-0115", "紫竹高新区创业中心大堂", "MH20201530", 4)))))
    out["find-error"] = Sample(base["find"].snap, page="find", found=Found("端午", error=True))
    out["find-empty"] = Sample(base["find"].snap, page="find")
    out["starting"] = Sample(Snapshot(state="starting"))
    out["fallback"] = Sample(Snapshot(state="a_state_with_no_screen"))
    return out
