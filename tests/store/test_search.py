"""Find a book, below the screen: pinyin keys of real titles, the index the core loop keeps, the read-only finder."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from kiosk.search import index
from kiosk.search.finder import Finder
from kiosk.search.isbn import isbn10, isbn13
from kiosk.search.pinyin import keys
from kiosk.store import replica
from kiosk.store.db import transaction
from kiosk.store.ledger import Store
from kiosk.sync import schema

HOME = (31.1120, 121.3810)             # 莘庄镇康城社区
NEAR = (31.1600, 121.3500, "七宝镇万科城市花园", "七莘路 3333 弄")      # about 6 km
FAR = (31.0280, 121.4560, "紫竹高新区创业中心大堂", "紫星路 588 号")   # about 12 km

# (title, author, isbn, clc): the library's recommended titles, Chinese classics, polyphones, Latin and digits.
CATALOGUE = [
    ("高考1978", "", "", "I251"), ("红楼梦", "曹雪芹", "9787020002207", "I242.4"), ("重庆森林", "", "", "J905"),
    ("长安十二时辰", "马伯庸", "", "I247.5"), ("银行", "", "", "F830"), ("音乐", "", "", "J6"),
    ("我心归处是敦煌", "樊锦诗 口述；顾春芳 撰写", "9787533959884", "K825.81"), ("杂草记", "", "", "Q949"),
    ("思君令人老，努力加餐饭", "", "", "I267"), ("端午", "", "", "K892.18"), ("百年沪闵路", "", "", "K295.1"),
    ("上海闵行红色地图", "", "", "K295.1"), ("去北极，在冰川消失前", "", "", "K951"), ("数学的故事", "", "", "O1-49"),
    ("开罗埃及博物馆", "", "", "G269.411"), ("咕咚来了", "", "", "I287.8"), ("DK蘑菇大百科", "", "", "Q949.32"),
    ("曾国藩传", "张宏杰", "", "K827"), ("Python编程：从入门到实践", "埃里克·马瑟斯", "", "TP311.561"),
    ("草房子", "曹文轩", "", "I287.45"), ("活着", "余华", "9787506365437", "I247.57"),
]


def _store(tmp_path, catalogue=CATALOGUE) -> Store:
    store = Store(tmp_path / "kiosk.sqlite3", "MH-0001")
    store.upsert_catalogue({"item_id": f"MH2020{n:04d}", "title": t, "author": a, "isbn": i, "clc": c}
                           for n, (t, a, i, c) in enumerate(catalogue))
    with transaction(store.db) as conn:
        index.set_home(conn, *HOME)
        index.refresh(conn)
    return store


def _holdings(store: Store, bookcase: str, place: tuple, titles: list, ts: str = "2026-11-01T10:00:00+08:00"):
    lat, lon, name, address = place
    msg = {"v": 1, "id": "6f1c0e3a-0000-4000-8000-000000000001", "bookcase": bookcase, "ts": ts, "type": "holdings",
           "name": f"闵行区图书馆城市书柜 · {name}", "address": address,
           **({"latitude": lat, "longitude": lon} if lat is not None else {}),        # a bookcase not placed yet
           "items": [{"item": f"{bookcase}-{n}", "door": 1 + n % 4,
                      **({"title": t} if isinstance(t, str) else {"title": t[0], "clc": t[1]})}
                     for n, t in enumerate(titles)]}
    schema.check_message("holdings", msg)
    with transaction(store.db) as conn:
        assert replica.replace_holdings(conn, msg)


def _titles(finder: Finder, text: str) -> list[str]:
    return [b.title for b in finder.search(text).books]


@pytest.fixture
def finder(tmp_path):
    store = _store(tmp_path)
    f = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    yield f
    f.close()
    store.close()


@pytest.mark.parametrize("typed, title", [
    ("gk1978", "高考1978"), ("gaokao1978", "高考1978"), ("gaok", "高考1978"), ("1978", "高考1978"),
    ("hlm", "红楼梦"), ("hongloumeng", "红楼梦"), ("lm", "红楼梦"),
    ("cq", "重庆森林"), ("chongqing", "重庆森林"),
    ("casesc", "长安十二时辰"), ("changan", "长安十二时辰"), ("mby", "长安十二时辰"),
    ("yinhang", "银行"), ("hang", "银行"), ("yinyue", "音乐"), ("yue", "音乐"),
    ("wxgcsdh", "我心归处是敦煌"), ("dunhuang", "我心归处是敦煌"), ("fjs", "我心归处是敦煌"), ("gcf", "我心归处是敦煌"),
    ("zcj", "杂草记"), ("sjlrl", "思君令人老，努力加餐饭"), ("nuli", "思君令人老，努力加餐饭"), ("dw", "端午"),
    ("bnhml", "百年沪闵路"), ("shmh", "上海闵行红色地图"), ("minhang", "上海闵行红色地图"),
    ("qbj", "去北极，在冰川消失前"), ("sxdgs", "数学的故事"), ("klajbwg", "开罗埃及博物馆"), ("gdll", "咕咚来了"),
    ("dk", "DK蘑菇大百科"), ("dkmg", "DK蘑菇大百科"), ("mogu", "DK蘑菇大百科"),
    ("zgf", "曾国藩传"), ("zengguofan", "曾国藩传"), ("python", "Python编程：从入门到实践"),
    ("pythonbc", "Python编程：从入门到实践"), ("9787020002207", "红楼梦"), ("978702", "红楼梦"), ("yh", "活着"),
    ("红楼", "红楼梦"), ("余华", "活着"),
])
def test_real_titles_are_found_by_what_a_patron_types(finder, typed, title):
    assert title in _titles(finder, typed)


@pytest.mark.parametrize("typed, title", [
    ("zhongqing", "重庆森林"), ("zhangan", "长安十二时辰"), ("yinxing", "银行"), ("yinle", "音乐"),
    ("duocao", "杂草记"), ("minxing", "上海闵行红色地图"), ("cengguofan", "曾国藩传"), ("gkao", "高考1978"),
])
def test_the_wrong_reading_of_a_polyphone_finds_nothing(finder, typed, title):
    assert title not in _titles(finder, typed)


def test_keys_of_a_title_and_an_author():
    assert keys("高考1978").head() == ("gaokao1978", "gk1978")
    assert keys("重庆森林").head() == ("chongqingsenlin", "cqsl")
    assert keys("长安十二时辰").head() == ("changanshiershichen", "casesc")
    assert keys("DK蘑菇大百科").head() == ("dkmogudabaike", "dkmgdbk")
    assert keys("单田芳", person=True).head() == ("shantianfang", "stf")
    assert keys("曾", person=True).head() == ("zeng", "z") and keys("曾经").head() == ("cengjing", "cj")


def test_pypinyin_reads_every_phrase_of_its_dictionary_the_same_with_the_subset():
    """kiosk/search/phrases.json keeps 4,000 of pypinyin's 47,000 phrases (43 MB less memory): it must read all
    of them as pypinyin with its whole dictionary does (after upgrading pypinyin: python -m kiosk.search.phrases)."""
    from kiosk.search.phrases import check
    assert check() == []


def test_the_finder_loads_pypinyin_without_its_whole_phrase_dictionary():
    code = ("from kiosk.search.pinyin import keys\nkeys('重庆')\n"
            "from pypinyin.constants import PHRASES_DICT\nimport json, os\n"
            "print(json.dumps([len(PHRASES_DICT), os.environ.get('PYPINYIN_NO_PHRASES')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    phrases, env = json.loads(out.stdout)
    assert 3000 < phrases < 10000 and env is None


def test_here_first_then_the_nearest_bookcase_then_nowhere(tmp_path):
    catalogue = [("数学分析", "", "", "O17"), ("数学家", "", "", "K816.11"), ("数学之美", "吴军", "", "TP391"),
                 ("数学的故事", "", "", "O1-49")]
    store = _store(tmp_path, catalogue)
    store.place_holdings(2, [("E004A1", "MH20200000")])              # 数学分析 is here, behind door 2
    _holdings(store, "MH-0115", FAR, ["数学的故事", "数学之美"])
    _holdings(store, "MH-0102", NEAR, ["数学之美"])
    finder = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    try:
        books = finder.search("sx").books
        assert [b.title for b in books] == ["数学分析", "数学之美", "数学的故事", "数学家"]
        assert books[0].here == ((2, 1),) and not books[0].places
        near, far = books[1].places
        assert (near.bookcase, far.bookcase) == ("MH-0102", "MH-0115")
        assert 5000 < near.distance_m < 7000 and 11000 < far.distance_m < 14000 and near.address == "七莘路 3333 弄"
        assert not books[3].held
        # The near bookcase lends its last copy: the far one is nearest now, and the finder sees it at once.
        _holdings(store, "MH-0102", NEAR, [], ts="2026-11-01T11:00:00+08:00")
        assert [b.title for b in finder.search("sx").books] == ["数学分析", "数学之美", "数学的故事", "数学家"]
        assert [p.bookcase for p in finder.search("sxzm").books[0].places] == ["MH-0115"]
        # Both elsewhere, the nearer first: move this bookcase next to the far one.
        _holdings(store, "MH-0102", NEAR, ["数学的故事"], ts="2026-11-01T12:00:00+08:00")
        with transaction(store.db) as conn:
            assert index.set_home(conn, 31.0300, 121.4500)
        assert [p.bookcase for p in finder.search("sxdgs").books[0].places] == ["MH-0115", "MH-0102"]
    finally:
        finder.close()
        store.close()


def test_a_title_start_comes_before_a_match_inside_a_title(tmp_path):
    store = _store(tmp_path, [("蒋勋说红楼梦", "蒋勋", "", "I207.411"), ("红楼梦", "曹雪芹", "", "I242.4")])
    finder = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    try:
        assert _titles(finder, "hlm") == ["红楼梦", "蒋勋说红楼梦"]
    finally:
        finder.close()
        store.close()


def test_shelves_new_children_popular_and_subjects(tmp_path):
    store = _store(tmp_path)
    ids = {t: f"MH2020{n:04d}" for n, (t, *_rest) in enumerate(CATALOGUE)}
    store.place_holdings(1, [("U1", ids["草房子"]), ("U2", ids["活着"]), ("U3", ids["红楼梦"]), ("U4", ids["咕咚来了"])])
    old = (datetime.now().astimezone() - timedelta(days=90)).isoformat()
    store.db.execute("UPDATE holdings SET updated = ? WHERE uid IN ('U3', 'U4')", (old,))
    store.db.execute("UPDATE tags SET first_seen = ? WHERE uid IN ('U3', 'U4')", (old,))
    now = datetime.now().astimezone().isoformat()
    last_month = (datetime.now().astimezone().replace(day=1) - timedelta(days=3)).isoformat()
    for n, (title, at) in enumerate([("活着", now), ("活着", now), ("红楼梦", now), ("草房子", last_month),
                                     ("草房子", last_month), ("草房子", last_month)]):
        store.db.execute("INSERT INTO sessions (id, kind, door, state, before_json, opened_at) VALUES "
                         "(?, 'patron', 1, 'done', '[]', ?)", (f"s{n}", at))
        store.db.execute("INSERT INTO loans (id, item_id, patron_key, session_id, door, loaned_at, due_at, returned_at) "
                         "VALUES (?, ?, 'p', ?, 1, ?, '2030-01-01', ?)", (f"l{n}", ids[title], f"s{n}", at, at))
    _holdings(store, "MH-0102", NEAR, [("小巴掌童话", "I287.7"), "DK蘑菇大百科"])
    finder = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    try:
        assert [b.title for b in finder.browse("new").books] == ["活着", "草房子"]
        assert [b.title for b in finder.browse("popular").books] == ["活着", "红楼梦"]
        children = [b.title for b in finder.browse("children").books]
        assert children[:2] == ["咕咚来了", "草房子"] or children[:2] == ["草房子", "咕咚来了"]
        assert children[2] == "小巴掌童话" and "活着" not in children
        assert {b.title for b in finder.browse("class:TP").books} == {"Python编程：从入门到实践"}
        assert "Python编程：从入门到实践" not in {b.title for b in finder.browse("class:T").books}
        literature = finder.browse("class:I").books
        assert {b.title for b in literature[:4]} == {"活着", "草房子", "红楼梦", "咕咚来了"}    # here first
        assert all(b.here for b in literature[:4]) and not any(b.here for b in literature[4:])
        classes = {code: (here, total) for code, here, total in finder.classes()}
        assert classes["I"][0] == 4 and classes["Q"] == (0, 1)
        with pytest.raises(ValueError):
            finder.browse("class:W")
    finally:
        finder.close()
        store.close()


def test_a_scanned_isbn_or_barcode_finds_its_book_and_a_reader_card_does_not(finder):
    assert finder.lookup("9787020002207").books[0].title == "红楼梦"
    assert finder.lookup(isbn10("9787020002207")).books[0].title == "红楼梦"        # 702000220X on older books
    assert finder.lookup("MH20200001").books[0].title == "红楼梦"
    unknown = finder.lookup("9787544253994")                                      # a real ISBN the library lacks
    assert unknown is not None and unknown.books == () and unknown.kind == "scan"
    assert finder.lookup("3101120000018") is None                                 # a reader card: the core's
    assert isbn13("978-7-02-000220-7") == "9787020002207" and isbn13("9787020002208") is None


def test_the_fleet_item_barcode_is_found_and_old_callers_still_get_rows(tmp_path):
    store = _store(tmp_path)
    _holdings(store, "MH-0102", NEAR, ["三体"])
    finder = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    try:
        (book,) = finder.lookup("MH-0102-0").books
        assert book.title == "三体" and book.places[0].doors == (1,)
        assert [(r["bookcase"], r["door"]) for r in finder("三体")] == [("MH-0102", 1)]
        assert finder.search("") .books == () and finder.search("!!").books == ()
    finally:
        finder.close()
        store.close()


def test_the_finder_never_writes(finder, tmp_path):
    finder.search("hlm")
    with pytest.raises(Exception, match="readonly|read-only|query_only|attempt to write"):
        finder._store.db.execute("INSERT INTO search_pending (title) VALUES ('x')")


def test_holdings_carry_author_isbn_and_class_and_the_migration_indexes_what_was_there(tmp_path):
    store = _store(tmp_path)
    store.place_holdings(3, [("U1", "MH20200001")])
    (item,) = replica.local_holdings(store.db)
    assert item == {"item": "MH20200001", "title": "红楼梦", "door": 3, "author": "曹雪芹", "isbn": "9787020002207",
                    "clc": "I242.4"}
    store.db.execute("UPDATE catalogue SET isbn = 'not an isbn' WHERE item_id = 'MH20200001'")
    assert "isbn" not in replica.local_holdings(store.db)[0]          # never a message the schema refuses
    # A title changed in the catalogue is queued by the trigger and indexed by the next refresh.
    store.upsert_catalogue([{"item_id": "MH20209999", "title": "繁花", "author": "金宇澄"}])
    assert index.pending(store.db.conn) == 2                 # 繁花, and 红楼梦 whose ISBN changed
    with transaction(store.db) as conn:
        assert index.refresh(conn) == 2
    finder = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    try:
        assert _titles(finder, "fanhua") == ["繁花"] and _titles(finder, "jyc") == ["繁花"]
    finally:
        finder.close()
        store.close()


@pytest.fixture
def here(tmp_path):
    """The finder of a bookcase whose shelves hold every title of CATALOGUE (one door each, round the doors)."""
    store = _store(tmp_path)
    store.place_holdings(1, [(f"U{n}", f"MH2020{n:04d}") for n in range(len(CATALOGUE))])
    f = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    yield f
    f.close()
    store.close()


@pytest.mark.parametrize("typed, title", [
    ("gk1978", "高考1978"), ("gaok", "高考1978"), ("1978", "高考1978"), ("hlm", "红楼梦"), ("lm", "红楼梦"),
    ("cq", "重庆森林"), ("casesc", "长安十二时辰"), ("mby", "长安十二时辰"), ("yinhang", "银行"), ("hang", "银行"),
    ("fjs", "我心归处是敦煌"), ("gcf", "我心归处是敦煌"), ("nuli", "思君令人老，努力加餐饭"), ("minhang", "上海闵行红色地图"),
    ("dkmg", "DK蘑菇大百科"), ("mogu", "DK蘑菇大百科"), ("zengguofan", "曾国藩传"), ("pythonbc", "Python编程：从入门到实践"),
    ("978702", "红楼梦"), ("yh", "活着"),
])
def test_titles_on_these_shelves_are_matched_as_the_index_matches_them(here, typed, title):
    """This bookcase's own titles are matched in the finder's memory, not by the FTS index: the same keys."""
    books = here.search(typed).books
    assert title in [b.title for b in books]
    assert all(b.here for b in books), "every title is on these shelves"


@pytest.mark.parametrize("typed, title", [("zhongqing", "重庆森林"), ("yinxing", "银行"), ("cengguofan", "曾国藩传"),
                                          ("gkao", "高考1978")])
def test_the_wrong_reading_finds_nothing_on_these_shelves_either(here, typed, title):
    assert title not in _titles(here, typed)


def test_a_title_whose_whole_key_was_typed_comes_first(tmp_path):
    """"sj" is the whole of 《史记》 and 《诗经》 and the start of many other titles, held nearer or in more copies:
    a patron who typed a whole title should not have to page through titles that only begin like it. Here still
    comes first, then the other bookcases, then nowhere."""
    store = _store(tmp_path, [("诗经", "", "", "I222.2"), ("时间简史", "霍金", "", "P159"), ("世界简史", "", "", "K10"),
                              ("数据结构", "", "", "TP311.12"), ("手机摄影", "", "", "J41"), ("史记", "司马迁", "", "K204.2"),
                              ("时间简史", "霍金", "", "P159")])
    store.place_holdings(1, [("U1", "MH20200001"), ("U2", "MH20200006"), ("U3", "MH20200005")])
    _holdings(store, "MH-0115", FAR, ["诗经"])
    _holdings(store, "MH-0102", NEAR, ["世界简史", "数据结构"])
    finder = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    try:
        assert _titles(finder, "sj") == ["史记", "时间简史", "诗经", "世界简史", "数据结构", "手机摄影"]
        assert _titles(finder, "sjjs") == ["时间简史", "世界简史"]
        assert _titles(finder, "smq") == ["史记"]                                  # its author, whole
    finally:
        finder.close()
        store.close()


def _full_count(conn) -> dict[int, tuple[int, float | None]]:
    counted = {t: (n, d) for t, n, d in conn.execute(
        "SELECT h.title_id, COUNT(DISTINCT h.bookcase), MIN(p.distance_m) FROM remote_holdings h "
        "LEFT JOIN peers p ON p.bookcase = h.bookcase WHERE h.title_id IS NOT NULL GROUP BY h.title_id")}
    return {i: counted.get(i, (0, None)) for (i,) in conn.execute("SELECT id FROM search_titles")}


def test_holders_and_the_nearest_stay_true_as_bookcases_gain_lose_and_move(tmp_path):
    """The index counts holders one bookcase at a time (not from every copy in the fleet): after any run of
    messages — titles gained and lost, copies added, a bookcase moving or not saying where it is, this bookcase
    moving — each title's count and nearest distance are what counting the fleet's items says."""
    import random
    store = _store(tmp_path)
    rng = random.Random(7)
    titles = [t for t, *_ in CATALOGUE] + [f"新书{n}" for n in range(30)]
    places = {f"MH-01{n:02d}": (31.0 + rng.random() * 0.25, 121.25 + rng.random() * 0.3) for n in range(8)}
    conn = store.db.conn
    checked = 0
    for step in range(120):
        bookcase = rng.choice(list(places))
        if rng.random() < 0.15:                                       # the bookcase was moved
            places[bookcase] = (31.0 + rng.random() * 0.25, 121.25 + rng.random() * 0.3)
        lat, lon = places[bookcase]
        place = (None, None, "某社区", "") if rng.random() < 0.1 else (lat, lon, "某社区", "某路 1 号")
        held = rng.choices(titles, k=rng.randint(0, 12))              # copies: a title may come twice
        ts = (datetime(2026, 11, 1, 10) + timedelta(minutes=step)).isoformat() + "+08:00"
        _holdings(store, bookcase, place, held, ts=ts)
        if step == 60:
            with transaction(store.db) as c:
                index.set_home(c, 31.05, 121.50)
        expected = _full_count(conn)
        actual = {i: (n, d) for i, n, d in conn.execute("SELECT id, holders, nearest_m FROM search_titles")}
        assert actual == expected, f"after message {step} from {bookcase}"
        checked += sum(1 for n, _ in expected.values() if n > 1)
    assert checked > 100, "titles held by several bookcases at once were checked"
    store.close()


def test_the_nearest_three_bookcases_of_a_title_among_forty(tmp_path):
    """A title's places: the three nearest bookcases that hold it, with their doors and copies, whether they are
    among the nearest bookcases (read first) or far beyond them."""
    from kiosk.search.finder import NEAR_PEERS
    store = _store(tmp_path)
    n_peers = NEAR_PEERS + 8
    for n in range(n_peers):                       # MH-0200 nearest, then one every 300 m to the north
        items = ["活着", "活着"] + (["红楼梦"] if n >= n_peers - 4 else []) + (["草房子"] if n in (5, n_peers - 1) else [])
        _holdings(store, f"MH-02{n:02d}", (HOME[0] + 0.0027 * (n + 1), HOME[1], f"社区{n}", f"某路 {n} 号"), items)
    finder = Finder(tmp_path / "kiosk.sqlite3", "MH-0001")
    try:
        (alive,) = finder.search("huozhe").books
        assert [p.bookcase for p in alive.places] == ["MH-0200", "MH-0201", "MH-0202"] and alive.elsewhere == n_peers
        assert alive.places[0].copies == 2 and alive.places[0].doors == (1, 2)
        assert 250 < alive.places[0].distance_m < 350 and alive.places[0].address == "某路 0 号"
        (dream,) = finder.search("hlm").books
        assert [p.bookcase for p in dream.places] == [f"MH-02{n:02d}" for n in range(n_peers - 4, n_peers - 1)]
        assert dream.elsewhere == 4 and dream.places[0].doors == (3,)
        (straw,) = finder.search("cfz").books
        assert [p.bookcase for p in straw.places] == ["MH-0205", f"MH-02{n_peers - 1:02d}"]
    finally:
        finder.close()
        store.close()


def test_the_demos_bookcases_stand_in_minhang_a_few_kilometres_apart(tmp_path):
    """`make demo` shows distances: config/demo.toml's bookcase and the demo fleet's MH-0102 say where they are."""
    from pathlib import Path

    from kiosk.config import load_config
    from simulators.fleet.bookcases import write_fleet_config
    from simulators.fleet.demo import PLACES
    here = load_config(Path(__file__).resolve().parents[2] / "config" / "demo.toml").bookcase
    peer = load_config(write_fleet_config(tmp_path, "MH-0102", "七宝镇万科城市花园", None,
                                          place=PLACES["MH-0102"])).bookcase
    for bc in (here, peer):
        assert 30.9 < bc.latitude < 31.25 and 121.25 < bc.longitude < 121.55, f"{bc.id} is not in Minhang"
        assert bc.address, bc.id
    assert 1000 < index.haversine_m(here.latitude, here.longitude, peer.latitude, peer.longitude) < 10_000


def test_words_read_once_are_read_as_pypinyin_reads_the_whole_title():
    """The search keeps each word's reading (kiosk.search.pinyin._word); a title read word by word must read as
    pypinyin reads it whole — on titles made of its phrases side by side, where the cut between words matters."""
    import random

    from kiosk.search import pinyin
    from kiosk.search.phrases import PHRASES_FILE, toneless
    py = pinyin._pypinyin()
    phrases = sorted(json.loads(PHRASES_FILE.read_text(encoding="utf-8")))
    rng = random.Random(15)
    texts = [t for t, *_ in CATALOGUE] + ["".join(rng.choice(phrases) + rng.choice("的一是了人我在有他这中大来上国个")
                                                  for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    pinyin._word.cache_clear()
    for text in texts:
        for run in (u for u in pinyin.UNIT.findall(text) if not u[0].isascii()):
            whole = py.lazy_pinyin(run, style=py.Style.NORMAL, errors=lambda cs: ["" for _ in cs])
            assert pinyin.syllables(run) == [toneless(s) for s in whole], text
    assert pinyin._word.cache_info().hits > 1000
