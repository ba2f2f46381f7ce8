"""Sample snapshots for every screen: screenshots, the layout tests, and moments the core does not produce yet."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from kiosk import __version__
from kiosk.core.snapshot import Diagnostics, Receipt, Snapshot, StaffView
from kiosk.core.policy import MESSAGES
from kiosk.search.results import Answer, Book, Place

LOGGER = logging.getLogger(__name__)

NOW = 960.0                                    # the sample clock (time.monotonic() stand-in)
BOOKCASE_NAME = "闵行区图书馆城市书柜 · 莘庄镇康城社区"
DOORS = (1, 2, 3, 4, 5, 6)

# `kiosk screenshot --state` names: the ten, then the extra pages.
STATES = ("attract", "identifying", "refused", "door_open", "scanning", "receipt", "out_of_service", "staff_pin",
          "staff_restock", "diagnostics", "choosing", "find", "help", "find_browse", "find_book", "find_reserve")
RESERVE_URL = "https://www.example.org/minhang-library/wechat/reserve"


@dataclass(frozen=True)
class Sample:
    """A snapshot and what the screen itself holds (page opened, search answer, PIN typed, door chosen)."""
    snap: Snapshot
    page: str | None = None
    found: Answer | None = None
    query: str = ""                            # the Find page: letters typed, book opened, subjects listed
    book: int | None = None
    offset: int = 0
    classes: tuple | None = None
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


# The Find page's sample answers: real titles, bookcases of the fleet with their addresses and distances.
QIBAO = Place("MH-0102", "闵行区图书馆城市书柜 · 七宝镇万科城市花园", "七莘路 3333 弄", 1240.0, (2, 3), 2)
LONGBAI = Place("MH-0107", "闵行区图书馆城市书柜 · 虹桥镇龙柏社区文化活动中心", "龙柏四村 88 号", 3420.0, (1,), 1)
ZIZHU = Place("MH-0115", "闵行区图书馆城市书柜 · 紫竹高新区创业中心大堂", "紫星路 588 号", 8960.0, (4,), 1)
HLM = Answer("hlm", (
    Book("红楼梦", "曹雪芹", "9787020002207", "I242.4", places=(QIBAO, LONGBAI), elsewhere=2),
    Book("红楼梦魇", "张爱玲", "9787530216781", "I207.411", places=(LONGBAI,), elsewhere=1),
    Book("红楼梦人物论", "王昆仑", "9787108027900", "I207.411"),
    Book("蒋勋说红楼梦", "蒋勋", "9787544731232", "I207.411", here=((3, 1),))))
HLM = Answer("hlm", (HLM.books[3],) + HLM.books[:3])                   # here first, then the nearest
HONGLOU_HERE = Book("红楼梦", "曹雪芹", "9787020002207", "I242.4", here=((3, 2), (5, 1)), places=(QIBAO, ZIZHU),
                    elsewhere=2)
DUNHUANG = Answer("我心归处是敦煌", (Book("我心归处是敦煌", "樊锦诗 口述；顾春芳 撰写", "9787533959884", "K825.81",
                                       here=((2, 2), (5, 1)), places=(QIBAO,), elsewhere=1),), kind="title")
ZACAO = Book("杂草记", "", "9787540791636", "Q949", places=(QIBAO, LONGBAI, ZIZHU), elsewhere=3)
BAINIAN = Book("百年孤独", "加西亚·马尔克斯 著；范晔 译", "9787544253994", "I775.45")
CHILDREN = tuple(Book(t, a, "", c, here=here, places=places, elsewhere=len(places)) for t, a, c, here, places in (
    ("草房子", "曹文轩", "I287.45", ((1, 2),), ()), ("咕咚来了", "", "I287.8", ((4, 1),), (QIBAO,)),
    ("小巴掌童话", "张秋生", "I287.7", (), (LONGBAI,)), ("猜猜我有多爱你", "山姆·麦克布雷尼", "I561.85", (), ())))
CLASSES_HERE = (("I", 48, 9210), ("K", 22, 3120), ("Q", 9, 860), ("O", 6, 940), ("G", 4, 1210), ("TP", 0, 2150),
                ("Z", 3, 420), ("C", 2, 730))


def samples(now: float = NOW) -> dict[str, Sample]:
    """One sample per screenshot state."""
    idle = Snapshot(state="idle", doors_in_service=DOORS)
    borrower = dict(may_borrow=12, limit=15, reason="welcome", kind="patron", doors_in_service=DOORS)
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
                                         staff=StaffView(doors_open=(1, 3), counting=(2,), checking=(6,),
                                                         summary=((4, 12, 3), (5, 8, 0))))),
        "diagnostics": Sample(Snapshot(state="staff_restock", kind="restock", doors_in_service=DOORS,
                                       staff=StaffView(), diagnostics=_diagnostics()), page="diagnostics"),
        "find": Sample(idle, page="find", found=HLM, query="hlm"),
        "help": Sample(idle, page="help"),
        "find_browse": Sample(idle, page="find"),
        "find_book": Sample(idle, page="find", found=DUNHUANG, book=0),
        "find_reserve": Sample(idle, page="find", found=Answer("9787544253994", (BAINIAN,), kind="scan"), book=0),
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
    idle = base["find"].snap
    out["find-none"] = Sample(idle, page="find", found=Answer("xqzz"), query="xqzz")
    out["find-elsewhere"] = Sample(idle, page="find", found=Answer("杂草记", (ZACAO,), kind="title"), book=0)
    out["find-error"] = Sample(idle, page="find", found=Answer("dw", error=True), query="dw")
    out["find-classes"] = Sample(idle, page="find", classes=CLASSES_HERE)
    out["find-shelf"] = Sample(idle, page="find", found=Answer("children", CHILDREN, kind="shelf", shelf="children"))
    out["find-paged"] = Sample(idle, page="find", found=Answer("h", HLM.books * 4, more=True), query="h", offset=3)
    out["find-popular-empty"] = Sample(idle, page="find", found=Answer("popular", kind="shelf", shelf="popular"))
    out["find-scan-unknown"] = Sample(idle, page="find", found=Answer("9787020024759", kind="scan"))
    out["find-here-and-near"] = Sample(idle, page="find", found=Answer("hlm", (HONGLOU_HERE,), kind="title"), book=0)
    out["starting"] = Sample(Snapshot(state="starting"))
    out["fallback"] = Sample(Snapshot(state="a_state_with_no_screen"))
    return out
