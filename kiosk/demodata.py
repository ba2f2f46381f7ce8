"""Demo catalogue and patrons of the Minhang District Library, shared by the daemon (seeding) and the simulators."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

# ISIL of the owning library: CN + 310112, the administrative code of Minhang district, Shanghai.
DEMO_ISIL = "CN-310112"
DEMO_COUNTRY = "CN"

# Item ids: "MH" + year of the stock-taking + a 4-digit running number, e.g. "MH20200001".
ITEM_ID_PREFIX = "MH2020"
MAX_DEMO_ITEMS = 9999

# Loan limits per patron class (the library's 2020 report: 15 at the central library since
# October 2020, branches still at 10; children's cards at 10).
PATRON_CLASS_LIMITS = {"adult": 15, "branch": 10, "child": 10}

# The library's short-video recommendations (docs/design.md §11). Authors only where certain.
RECOMMENDED_TITLES: tuple[tuple[str, str], ...] = (
    ("高考1978", ""),
    ("我心归处是敦煌", "樊锦诗 口述；顾春芳 撰写"),
    ("杂草记", ""),
    ("思君令人老，努力加餐饭", ""),
    ("端午", ""),
    ("百年沪闵路", ""),
    ("上海闵行红色地图", ""),
    ("去北极，在冰川消失前", ""),
    ("数学的故事", ""),
    ("开罗埃及博物馆", ""),
    ("咕咚来了", ""),
    ("DK蘑菇大百科", ""),
)

# Children's books (about 30 % of the library's loans are children's).
CHILDREN_TITLES: tuple[tuple[str, str], ...] = (
    ("草房子", "曹文轩"),
    ("青铜葵花", "曹文轩"),
    ("小巴掌童话", "张秋生"),
    ("没头脑和不高兴", "任溶溶"),
    ("大林和小林", "张天翼"),
    ("稻草人", "叶圣陶"),
    ("小猪唏哩呼噜", "孙幼军"),
    ("皮皮鲁传", "郑渊洁"),
    ("城南旧事", "林海音"),
    ("猜猜我有多爱你", "山姆·麦克布雷尼"),
    ("好饿的毛毛虫", "艾瑞·卡尔"),
    ("十万个为什么", ""),
)

# General titles, with a Shanghai flavour.
GENERAL_TITLES: tuple[tuple[str, str], ...] = (
    ("繁花", "金宇澄"),
    ("长恨歌", "王安忆"),
    ("活着", "余华"),
    ("平凡的世界", "路遥"),
    ("围城", "钱锺书"),
    ("人世间", "梁晓声"),
    ("额尔古纳河右岸", "迟子建"),
    ("三体", "刘慈欣"),
    ("乡土中国", "费孝通"),
    ("人间词话", "王国维"),
    ("朝花夕拾", "鲁迅"),
    ("呼兰河传", "萧红"),
    ("骆驼祥子", "老舍"),
    ("边城", "沈从文"),
    ("家", "巴金"),
)

# CLC class marks (中国图书馆分类法) of the demo titles, for browsing by subject and the children's shelf.
CLASS_MARKS: dict[str, str] = {
    "高考1978": "I251", "我心归处是敦煌": "K825.81", "杂草记": "Q949", "思君令人老，努力加餐饭": "I267",
    "端午": "K892.18", "百年沪闵路": "K295.1", "上海闵行红色地图": "K295.1", "去北极，在冰川消失前": "K951",
    "数学的故事": "O1-49", "开罗埃及博物馆": "G269.411", "咕咚来了": "I287.8", "DK蘑菇大百科": "Q949.32",
    "草房子": "I287.45", "青铜葵花": "I287.45", "小巴掌童话": "I287.7", "没头脑和不高兴": "I287.7",
    "大林和小林": "I287.7", "稻草人": "I287.7", "小猪唏哩呼噜": "I287.7", "皮皮鲁传": "I287.45",
    "城南旧事": "I287.45", "猜猜我有多爱你": "I561.85", "好饿的毛毛虫": "I712.85", "十万个为什么": "Z228.1",
    "繁花": "I247.5", "长恨歌": "I247.5", "活着": "I247.57", "平凡的世界": "I247.5", "围城": "I246.5",
    "人世间": "I247.5", "额尔古纳河右岸": "I247.5", "三体": "I247.55", "乡土中国": "C912.82",
    "人间词话": "I207.23", "朝花夕拾": "I210.6", "呼兰河传": "I246.5", "骆驼祥子": "I246.5", "边城": "I246.5",
    "家": "I246.5",
}
# ISBNs known for these editions; the other demo titles get made-up ISBNs with valid check digits (demo_isbn).
KNOWN_ISBNS = {"活着": "9787506365437", "三体": "9787536692930", "红楼梦": "9787020002207",
               "百年孤独": "9787544253994"}

# Titles in the library's catalogue that the demo bookcase does not stock (item ids "MH2019…"): the Find page
# names the bookcases that hold them, or offers to reserve them. (title, author, CLC class)
LIBRARY_TITLES: tuple[tuple[str, str, str], ...] = (
    ("红楼梦", "曹雪芹", "I242.4"),
    ("三国演义", "罗贯中", "I242.4"),
    ("西游记", "吴承恩", "I242.4"),
    ("长安十二时辰", "马伯庸", "I247.5"),
    ("百年孤独", "加西亚·马尔克斯 著；范晔 译", "I775.45"),
    ("小王子", "圣埃克苏佩里", "I565.88"),
    ("时间简史", "史蒂芬·霍金", "P159"),
    ("曾国藩传", "张宏杰", "K827"),
    ("Python编程：从入门到实践", "埃里克·马瑟斯", "TP311.561"),
    ("海底两万里", "儒勒·凡尔纳", "I565.84"),
)
LIBRARY_ITEM_PREFIX = "MH2019"


def demo_isbn(title: str) -> str:
    """The title's ISBN-13: a known one, else one made up from the title (978-7, a valid check digit)."""
    if title in KNOWN_ISBNS:
        return KNOWN_ISBNS[title]
    body = "9787" + str(int.from_bytes(hashlib.sha256(title.encode("utf-8")).digest()[:6], "big"))[-8:].zfill(8)
    check = (10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body)) % 10) % 10
    return body + str(check)


def library_books() -> list[DemoBook]:
    """One catalogue record for each of LIBRARY_TITLES, behind no door of the demo bookcase (door 0)."""
    return [DemoBook(f"{LIBRARY_ITEM_PREFIX}{n + 1:04d}", title, author, 0, demo_isbn(title), clc)
            for n, (title, author, clc) in enumerate(LIBRARY_TITLES)]


# Copies of each title in the demo pool: recommended titles are stocked several times over.
_COPIES = ((RECOMMENDED_TITLES, 4), (CHILDREN_TITLES, 2), (GENERAL_TITLES, 2))
_SHUFFLE_SEED = 2020


@dataclass(frozen=True)
class DemoBook:
    """One demo item: its barcode, bibliographic data and the door it is stocked behind."""

    item_id: str
    title: str
    author: str
    door: int
    isbn: str = ""
    clc: str = ""


@dataclass(frozen=True)
class DemoPatron:
    """One demo reader card: 13-digit card number, class ("adult", "branch", "child"), status and
    the number of loans the patron already has elsewhere in the network."""

    card_number: str
    patron_class: str
    status: str
    loans_elsewhere: int

    @property
    def loan_limit(self) -> int:
        return PATRON_CLASS_LIMITS[self.patron_class]


def _title_pool() -> list[tuple[str, str]]:
    pool = [entry for titles, copies in _COPIES for entry in titles for _ in range(copies)]
    random.Random(_SHUFFLE_SEED).shuffle(pool)
    return pool


def demo_books(doors: Sequence[int], per_door: int = 60) -> list[DemoBook]:
    """``per_door`` books for each door in ``doors``, in door order; deterministic, item ids unique."""
    if per_door < 0:
        raise ValueError(f"per_door must not be negative, got {per_door}")
    if len(set(doors)) != len(doors):
        raise ValueError(f"door numbers must be unique, got {list(doors)}")
    total = len(doors) * per_door
    if total > MAX_DEMO_ITEMS:
        raise ValueError(f"at most {MAX_DEMO_ITEMS} demo books, asked for {total}")
    pool = _title_pool()
    books = []
    for index in range(total):
        title, author = pool[index % len(pool)]
        books.append(DemoBook(item_id=f"{ITEM_ID_PREFIX}{index + 1:04d}", title=title, author=author,
                              door=doors[index // per_door], isbn=demo_isbn(title), clc=CLASS_MARKS.get(title, "")))
    return books


def demo_patrons() -> list[DemoPatron]:
    """Reader cards covering every class and status, one adult a single loan short of the limit, and two
    contactless cards known by their UID (tap them on the virtual reader: `kiosk-sim ctl DIR tap UID`)."""
    return [
        DemoPatron("3101120000018", "adult", "active", 0),
        DemoPatron("3101120000026", "adult", "active", 3),
        DemoPatron("3101120000034", "adult", "active", 14),
        DemoPatron("3101120000042", "branch", "active", 2),
        DemoPatron("3101120000059", "child", "active", 1),
        DemoPatron("3101120000067", "child", "active", 0),
        DemoPatron("3101120000075", "adult", "blocked", 0),
        DemoPatron("3101120000083", "branch", "expired", 0),
        DemoPatron("3101120000091", "adult", "overdue", 4),
        DemoPatron("3101120000109", "adult", "lost", 0),
        DemoPatron("04A224B2C35E80", "adult", "active", 1),     # contactless card UIDs (PC/SC)
        DemoPatron("04B3C5D7E9F101", "child", "active", 0),
    ]


# Demo staff card (UID) and PIN, seeded only with [demo] seed = true. Real staff cards are added with
# `kiosk staff add`, which asks for the PIN: there is no default PIN on a real bookcase.
DEMO_STAFF_CARD, DEMO_STAFF_PIN = "04FFEEDDCCBB01", "2468"


def uid_for(item_id: str) -> bytes:
    """Deterministic ISO 15693 UID of an item's tag: E0 (ISO 15693), 04 (NXP), then 6 bytes from a hash."""
    return bytes([0xE0, 0x04]) + hashlib.sha256(item_id.encode("utf-8")).digest()[:6]
