"""The content playlist on the attract screen: real clips, pictures and cards from a signed ContentStore, in order,
never a blank frame between them; skipped files, new content, the schedule, the fallback, a blank screen."""

from __future__ import annotations

import logging
import threading
import time
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pygame
import pytest

from kiosk.config import ScreenConfig
from kiosk.core.snapshot import Snapshot
from kiosk.ui.i18n import catalogue
from kiosk.ui.loop import KioskUI
from kiosk.ui.samples import Sample
from kiosk.ui.screens import cards
from kiosk.ui.screens import playlist as playlist_module
from kiosk.ui.screens.playlist import Playlist
from kiosk.ui.screens.promo import CARDS
from kiosk.ui.video import QUEUE_FRAMES, Video
from kiosk.ui.voice import Voice
from tests.content.media import (
    BLUE,
    FPS,
    GREEN,
    MAGENTA,
    ORANGE,
    RED,
    YELLOW,
    Library,
    frame_index,
    make_clip,
    make_junk,
    make_picture,
    make_truncated,
    near,
)
from tests.ui.layout import check_frame, english_on_chinese_screen
from tests.ui.support import Holder, drawn_lines, finger, window_ui

ROOT = Path(__file__).resolve().parents[2]

TZ = ZoneInfo("Asia/Shanghai")
IDLE = Snapshot(state="idle", doors_in_service=(1, 2, 3))
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=TZ)
FAKE_LIMIT_S = 30.0       # of the screen's (fake) clock: a playlist that never gets there fails, it does not hang
LOGGER_NAME = "kiosk.ui.screens.playlist"
HANG_S = 20.0             # real seconds: only against a decoder that hangs


class Clock:
    """The screen's monotonic clock, and a local wall clock that moves with it."""

    def __init__(self, local: datetime = NOON) -> None:
        self.now = 1000.0
        self.local = local

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.local + timedelta(seconds=self.now - 1000.0)


class Watch:
    """Looks at the promotional region after every turn of the loop: nine points that must all show one colour
    of the content (never black, never the empty card), and the sequence of what was on screen."""

    def __init__(self, ui: KioskUI, playlist: Playlist, colours: dict[str, tuple[int, int, int]]) -> None:
        self.ui, self.playlist, self.colours = ui, playlist, colours
        self.seen: list[str] = []           # colours on screen, each run once
        self.ids: list[str | None] = []     # playlist.showing, each run once
        self.frames = 0

    def __call__(self) -> None:
        self.frames += 1
        showing = self.playlist.showing
        if not self.ids or self.ids[-1] != showing:
            self.ids.append(showing)
        if not self.colours or showing is None and not self.seen:
            return                          # the built-in cards until the first item is ready
        r = self.playlist.rect
        names = set()
        for fx in (-0.3, -0.1, 0.1):
            for fy in (-0.3, 0.0, 0.3):
                pixel = self.ui.surface.get_at((int(r.centerx + fx * r.width), int(r.centery + fy * r.height)))
                name = next((n for n, c in self.colours.items() if near(pixel, c)), None)
                assert name is not None, f"frame {self.frames}: {tuple(pixel)} in the region while {showing!r} " \
                                         f"plays (sequence so far {self.seen})"
                names.add(name)
        assert len(names) == 1, f"frame {self.frames}: two items at once: {names}"
        if not self.seen or self.seen[-1] != names.pop():
            self.seen.append(next(n for n, c in self.colours.items() if near(pixel, c)))


def run(ui: KioskUI, clock: Clock, until, watch: Watch | None = None, dt: float = 1 / FPS) -> None:
    """Turn the screen's loop, ``dt`` of its clock a turn, until ``until()``."""
    end = clock.now + FAKE_LIMIT_S
    while not until():
        assert clock.now < end, f"not reached in {FAKE_LIMIT_S} s of play: seen {watch.seen if watch else '?'}"
        clock.now += dt
        ui.step()
        if watch is not None:
            watch()
        settle(ui.screens["attract"].promo)


def settle(playlist: Playlist) -> None:
    """Wait (in real time) until every video's worker has its few frames ahead: the screen's clock is fake and
    would otherwise run far ahead of any decoder."""
    deadline = time.monotonic() + HANG_S
    while playlist.decoding:
        assert time.monotonic() < deadline, "a decoder hangs"
        time.sleep(0.0005)


@pytest.fixture
def library(tmp_path):
    return Library(tmp_path / "content")


@pytest.fixture
def screen(fonts):
    made: list[KioskUI] = []

    def make(playlist: Playlist, clock: Clock, holder: Holder | None = None, **kw) -> KioskUI:
        ui = window_ui(fonts, holder or Holder(IDLE), clock=clock, promo=playlist, **kw)
        made.append(ui)
        return ui
    yield make
    for ui in made:
        ui.close()


def video(item_id: str, asset: str, **kw) -> dict:
    return {"id": item_id, "kind": "video", "asset": asset, **kw}


def test_the_playlist_loops_without_a_blank_frame(tmp_path, library, screen):
    files = {"video/a.mp4": make_clip(tmp_path / "a.mp4", RED), "video/b.mp4": make_clip(tmp_path / "b.mp4", GREEN),
             "image/c.png": make_picture(tmp_path / "c.png", BLUE)}
    library.publish([video("a", "video/a.mp4"), video("b", "video/b.mp4"),
                     {"id": "c", "kind": "image", "asset": "image/c.png", "duration_s": 0.5}], files)
    clock = Clock()
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    watch = Watch(ui, playlist, {"red": RED, "green": GREEN, "blue": BLUE})
    run(ui, clock, lambda: len(watch.seen) >= 5, watch)
    assert watch.seen == ["red", "green", "blue", "red", "green"]
    assert [i for i in watch.ids if i] == ["a", "b", "c", "a", "b"]
    assert ui.partial_frames > FPS             # the video's frames: only the region redrawn
    assert ui.frames - ui.partial_frames < 20  # a full frame at each change of item, not at each video frame
    assert playlist.counts.shown >= FPS


def test_the_last_frame_stays_up_until_the_next_clip_has_its_first(tmp_path, library, screen, monkeypatch):
    """The next clip's decoder is held back (a slow card) until the screen has waited three turns for it:
    meanwhile the last frame of the clip that ended stays up, through a full redraw too, and nothing black."""
    monkeypatch.setattr(playlist_module, "PREPARE_S", 0.0)      # open the next clip only when this one ends
    gate, made = threading.Event(), []

    class SlowToOpen(Video):
        def start(self) -> Video:
            made.append(self)
            if self.name != "video/b.mp4":
                return super().start()
            threading.Thread(target=lambda: gate.wait(HANG_S) and Video.start(self), daemon=True).start()
            return self
    monkeypatch.setattr(playlist_module, "Video", SlowToOpen)

    def settle_but_b() -> None:
        deadline = time.monotonic() + HANG_S
        while any(v.busy for v in made if gate.is_set() or v.name != "video/b.mp4"):
            assert time.monotonic() < deadline, "a decoder hangs"
            time.sleep(0.0005)

    files = {"video/a.mp4": make_clip(tmp_path / "a.mp4", RED), "video/b.mp4": make_clip(tmp_path / "b.mp4", GREEN)}
    library.publish([video("a", "video/a.mp4"), video("b", "video/b.mp4")], files)
    clock = Clock()
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    watch = Watch(ui, playlist, {"red": RED, "green": GREEN})
    run(ui, clock, lambda: playlist.showing == "a", watch)
    held = 0
    while playlist.showing != "b":
        clock.now += 1 / FPS
        ui.step()
        watch()
        if playlist.waiting:                            # the loop turns on while b opens
            held += 1
            ui.invalidate()                             # a full redraw meanwhile (a language switch, say)
            ui.step()
            watch()
            if held == 3:
                gate.set()
            time.sleep(0.001)
        else:
            settle_but_b()
        assert clock.now < 1000 + FAKE_LIMIT_S
    assert held >= 3 and watch.seen == ["red", "green"]


def test_only_the_region_is_redrawn_and_the_buttons_still_work(tmp_path, library, screen):
    library.publish([video("a", "video/a.mp4")], {"video/a.mp4": make_clip(tmp_path / "a.mp4", RED, seconds=2)})
    clock = Clock()
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    run(ui, clock, lambda: playlist.showing == "a")
    full = ui.frames - ui.partial_frames
    run(ui, clock, lambda: ui.partial_frames >= 10)
    assert ui.frames - ui.partial_frames == full and ui.current == "attract"
    finger(ui, "find")
    ui.step()
    assert ui.current == "find"


def test_a_file_that_will_not_play_is_skipped_and_logged_once(tmp_path, library, screen, caplog):
    red = make_clip(tmp_path / "a.mp4", RED, seconds=0.5)
    files = {"video/junk.mp4": make_junk(tmp_path / "junk.mp4"), "video/a.mp4": red,
             "video/half.mp4": make_truncated(make_clip(tmp_path / "whole.mp4", ORANGE), tmp_path / "half.mp4"),
             "image/bad.png": make_junk(tmp_path / "bad.png"),
             "video/b.mp4": make_clip(tmp_path / "b.mp4", GREEN, seconds=0.5)}
    library.publish([video("junk", "video/junk.mp4"), video("a", "video/a.mp4"), video("half", "video/half.mp4"),
                     {"id": "pic", "kind": "image", "asset": "image/bad.png"}, video("b", "video/b.mp4")], files)
    clock = Clock()
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    watch = Watch(ui, playlist, {"red": RED, "green": GREEN})
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        run(ui, clock, lambda: len(watch.seen) >= 5, watch)
    assert watch.seen == ["red", "green", "red", "green", "red"]
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(lines) == 3, lines                          # one per file, not one per loop
    for item_id, asset in (("junk", "video/junk.mp4"), ("half", "video/half.mp4"), ("pic", "image/bad.png")):
        line = next(m for m in lines if f"'{item_id}'" in m)
        assert asset in line and "skipped" in line
    assert "damaged" in next(m for m in lines if "'half'" in m)


def test_a_file_mended_in_new_content_plays_again(tmp_path, library, screen, caplog):
    library.publish([video("a", "video/a.mp4"), video("b", "video/b.mp4")],
                    {"video/a.mp4": make_junk(tmp_path / "junk.mp4"),
                     "video/b.mp4": make_clip(tmp_path / "b.mp4", GREEN, seconds=0.5)})
    clock = Clock()
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    watch = Watch(ui, playlist, {"red": RED, "green": GREEN})
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        start = clock.now
        run(ui, clock, lambda: clock.now > start + 2, watch)      # b loops four times; a never plays
        assert watch.seen == ["green"]
        # The library sends the same item and path again, with a good file this time.
        library.publish([video("a", "video/a.mp4"), video("b", "video/b.mp4")],
                        {"video/a.mp4": make_clip(tmp_path / "a.mp4", RED, seconds=0.5),
                         "video/b.mp4": make_clip(tmp_path / "b.mp4", GREEN, seconds=0.5)})
        run(ui, clock, lambda: "red" in watch.seen, watch)
    assert len([r for r in caplog.records if r.name == LOGGER_NAME]) == 1


def fact_card(ui: KioskUI) -> str | None:
    """The title of the built-in fact card on screen, if one is."""
    titles = {catalogue(ui.lang).t(f"promo.{card}_title") for card in CARDS}
    return next((t.text for t in ui.painter.texts if t.text in titles), None)


def test_every_item_failing_or_no_content_shows_the_built_in_cards(tmp_path, library, screen, caplog):
    clock = Clock()
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    ui.step()
    assert playlist.showing is None and fact_card(ui)                   # nothing installed
    library.publish([{"id": "old", "kind": "book", "title": "端午", "author": "佚名",
                      "when": {"until": "2020-01-01"}}], {})
    run(ui, clock, lambda: clock.now > 1003)
    assert playlist.showing is None and fact_card(ui)                   # nothing scheduled now
    library.publish([video("x", "video/x.mp4"), video("y", "video/y.mp4")],
                    {"video/x.mp4": make_junk(tmp_path / "x.mp4"), "video/y.mp4": make_junk(tmp_path / "y.mp4")})
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        run(ui, clock, lambda: clock.now > 1010)
    assert playlist.showing is None and fact_card(ui)                   # nothing that plays
    assert len([r for r in caplog.records if r.name == LOGGER_NAME]) == 2
    library.publish([{"id": "book", "kind": "book", "title": "端午", "author": "佚名"}], {})
    run(ui, clock, lambda: playlist.showing == "book")
    assert "端午" in drawn_lines(ui) and not fact_card(ui)


def test_new_content_takes_over_at_once_without_a_blank_frame(tmp_path, library, screen):
    library.publish([video("a", "video/a.mp4")], {"video/a.mp4": make_clip(tmp_path / "a.mp4", RED, seconds=3)})
    clock = Clock()
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    watch = Watch(ui, playlist, {"red": RED, "yellow": YELLOW, "magenta": MAGENTA})
    run(ui, clock, lambda: playlist.showing == "a", watch)
    started = clock.now
    run(ui, clock, lambda: clock.now > started + 0.3, watch)
    library.publish([video("c", "video/c.mp4"), {"id": "d", "kind": "image", "asset": "image/d.png",
                                                 "duration_s": 0.5}],
                    {"video/c.mp4": make_clip(tmp_path / "c.mp4", YELLOW), "image/d.png": make_picture(
                        tmp_path / "d.png", MAGENTA)})
    run(ui, clock, lambda: playlist.showing == "c", watch)
    assert clock.now - started < 2.5                    # long before the 3 s clip would have ended
    run(ui, clock, lambda: len(watch.seen) >= 4, watch)
    assert watch.seen == ["red", "yellow", "magenta", "yellow"]


@pytest.mark.parametrize("before_s, expected", [
    (1.2, ["a", "c", "a", "c"]),      # b's window ends while a plays (after b was made ready): b is not next
    (4.0, ["a", "b", "c", "a"]),      # the same playlist a few seconds earlier: b plays
])
def test_an_item_whose_window_has_ended_is_not_picked_next(library, screen, before_s, expected):
    def book(item_id, **kw):
        return {"id": item_id, "kind": "book", "title": f"书 {item_id}", "author": "佚名", "duration_s": 1.5, **kw}
    library.publish([book("a"), book("b", when={"times": ["10:00-10:05"]}), book("c")], {})
    clock = Clock(datetime(2026, 12, 1, 10, 5, tzinfo=TZ) - timedelta(seconds=before_s))
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    watch = Watch(ui, playlist, {})                     # what plays, not its colours
    run(ui, clock, lambda: len([i for i in watch.ids if i]) >= 4, watch)
    assert [i for i in watch.ids if i][:4] == expected


def test_a_blank_screen_stops_the_video_and_it_carries_on_after(tmp_path, library, screen):
    library.publish([video("a", "video/a.mp4")], {"video/a.mp4": make_clip(tmp_path / "a.mp4", RED, seconds=2)})
    clock, holder = Clock(), Holder(IDLE)
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock, holder)
    run(ui, clock, lambda: playlist.showing == "a" and playlist.counts.shown >= 20)
    r = playlist.rect
    band = (r.centerx + int(0.4 * r.width), r.centery)
    before = frame_index(ui.surface.get_at(band), 2 * FPS)
    ui.set_blank(True)
    clock.now += 600                                    # ten minutes dark
    assert not ui.render() and not ui.step()
    counts = playlist.counts
    assert counts.decoded - counts.shown - counts.dropped <= 2 * QUEUE_FRAMES     # this clip, and the next
    time.sleep(0.05)
    assert playlist.counts.decoded == counts.decoded    # nothing decoded while dark
    ui.set_blank(False)
    clock.now += 1 / FPS
    assert ui.step()
    after = frame_index(ui.surface.get_at(band), 2 * FPS)
    assert playlist.showing == "a" and before <= after <= before + 2     # the same clip, where it was
    holder.snap = Snapshot(state="identifying")        # a patron's session: the attract screen is not shown
    clock.now += 1 / FPS
    ui.step()
    clock.now += 600
    holder.snap = IDLE
    ui.step()
    again = frame_index(ui.surface.get_at(band), 2 * FPS)
    assert playlist.showing == "a" and after <= again <= after + 3


# --- cards: the layout check, both languages, both orientations ----------------------------------------------

BOOK = {"id": "book", "kind": "book", "cover": "image/cover.png",
        "title": {"zh": "我心归处是敦煌", "en": "Dunhuang, Where My Heart Belongs"},
        "author": {"zh": "樊锦诗 口述；顾春芳 撰写", "en": "Fan Jinshi, with Gu Chunfang"},
        "why": {"zh": "一位考古学家和莫高窟的五十年，写给每一个想走远路的人。",
                "en": "Fifty years of an archaeologist's life at the Mogao caves, for anyone setting out on "
                      "a long road."},
        "where": {"zh": "2 号门", "en": "door 2"}}
QR = {"id": "wechat", "kind": "qr", "url": "https://weixin.qq.com/r/mhlib-citybookcase-0001",
      "title": {"zh": "关注闵图微信公众号", "en": "Follow the library on WeChat"},
      "body": {"zh": "电子读者证、活动预告和数字资源都在这里。",
               "en": "Your e-card, coming events and the digital resources, all in one place."}}


def card_ui(fonts, playlist: Playlist, lang: str, size: tuple[int, int]) -> KioskUI:
    ui = KioskUI(ScreenConfig(width=size[0], height=size[1], fullscreen=False, language=lang, voice=False),
                 bookcase_name="测试书柜", snapshot=lambda: IDLE, fonts=fonts, voice=Voice(enabled=False),
                 clock=lambda: 500.0, promo=playlist)
    ui.use_surface(pygame.Surface(size))
    ui.render(force=True)
    return ui


@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("item", ["book", "book-no-cover", "qr"])
def test_cards_pass_the_layout_check(tmp_path, fonts, library, lang, size, item):
    cover = make_picture(tmp_path / "cover.png", ORANGE, (200, 300))
    if item == "qr":
        library.publish([QR], {})
    elif item == "book":
        library.publish([BOOK], {"image/cover.png": cover})
    else:
        library.publish([{k: v for k, v in BOOK.items() if k != "cover"}], {})
    playlist = Playlist(library.store, TZ, wallclock=lambda: NOON)
    ui = card_ui(fonts, playlist, lang, size)
    try:
        assert playlist.showing == QR["id"] if item == "qr" else "book"
        check_frame(ui, fonts, f"{item}/{lang}/{size}")
        if lang == "zh":
            assert not english_on_chinese_screen(ui, Sample(IDLE))
        texts = [t.text for t in ui.painter.texts]
        if item == "qr":
            assert QR["title"][lang] in texts and catalogue(lang).t("promo.qr_scan") in texts
            check_qr(ui, playlist)
        else:
            assert BOOK["title"][lang] in texts and catalogue(lang).t("promo.book_where",
                                                                     where=BOOK["where"][lang]) in texts
            cover_box = cards.book_boxes(ui.painter.L, playlist.rect)[0]
            centre = tuple(ui.surface.get_at(cover_box.center))[:3]
            assert near(centre, ORANGE) == (item == "book"), centre      # the cover, or the placeholder
    finally:
        ui.close()


def _demo_cards() -> list[dict]:
    """The book and QR cards of the demo's real content (config/demo-content/content.toml), without pictures."""
    data = tomllib.loads((ROOT / "config" / "demo-content" / "content.toml").read_text(encoding="utf-8"))
    keep = {"id", "kind", "title", "author", "why", "where", "body", "caption", "url"}
    return [{k: v for k, v in item.items() if k in keep} for item in data["items"] if item["kind"] in ("book", "qr")]


@pytest.mark.parametrize("size", [(1080, 1920), (1920, 1080), (540, 960)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("item", _demo_cards(), ids=lambda item: item["id"])
def test_every_card_of_the_demo_content_fits_without_cutting_text(fonts, library, lang, size, item):
    library.publish([item], {})
    playlist = Playlist(library.store, TZ, wallclock=lambda: NOON)
    ui = card_ui(fonts, playlist, lang, size)
    try:
        assert playlist.showing == item["id"]
        check_frame(ui, fonts, f"{item['id']}/{lang}/{size}")
    finally:
        ui.close()


def check_qr(ui: KioskUI, playlist: Playlist) -> None:
    """The code on screen is the URL's, module for module, with its quiet zone, and big enough to scan."""
    import segno
    L, rect = ui.painter.L, playlist.rect
    side = cards.qr_side(L, rect)
    code = cards.qr_picture(QR["url"], side)
    assert code.get_width() >= 300 * L.s
    inner = cards.inner(L, rect)
    dest = code.get_rect(center=pygame.Rect(inner.left, inner.top, side, inner.height).center)
    matrix = segno.make(QR["url"], error="m", micro=False).matrix
    n = len(matrix) + 2 * cards.QR_BORDER
    module = code.get_width() // n
    for y in range(n):
        for x in range(n):
            inside = cards.QR_BORDER <= x < n - cards.QR_BORDER and cards.QR_BORDER <= y < n - cards.QR_BORDER
            dark = inside and matrix[y - cards.QR_BORDER][x - cards.QR_BORDER]
            pixel = ui.surface.get_at((dest.left + x * module + module // 2, dest.top + y * module + module // 2))
            assert tuple(pixel)[:3] == (cards.DARK if dark else cards.LIGHT), (x, y)


def test_a_still_card_costs_nothing_until_it_ends(library, screen):
    library.publish([{"id": "wechat", **{k: v for k, v in QR.items() if k != "id"}, "duration_s": 4}], {})
    clock = Clock()
    playlist = Playlist(library.store, TZ, wallclock=clock.wall)
    ui = screen(playlist, clock)
    run(ui, clock, lambda: playlist.showing == "wechat")
    frames, made = ui.frames, len(playlist.pictures._found)
    run(ui, clock, lambda: clock.now > 1003)
    assert ui.frames == frames and len(playlist.pictures._found) == made      # no frame, no new picture


@pytest.mark.parametrize("lang, shown", [("zh", "测试书柜"), ("en", "Test Bookcase, Minhang")])
def test_the_bookcase_name_follows_the_screen_language(fonts, library, lang, shown):
    library.publish([QR], {})
    ui = KioskUI(ScreenConfig(width=1080, height=1920, fullscreen=False, language=lang, voice=False),
                 bookcase_name="测试书柜", bookcase_name_en="Test Bookcase, Minhang", snapshot=lambda: IDLE,
                 fonts=fonts, voice=Voice(enabled=False), clock=lambda: 500.0,
                 promo=Playlist(library.store, TZ, wallclock=lambda: NOON))
    try:
        ui.use_surface(pygame.Surface((1080, 1920)))
        ui.render(force=True)
        texts = [t.text for t in ui.painter.texts]
        assert shown in texts and ({"测试书柜", "Test Bookcase, Minhang"} - {shown}).isdisjoint(texts)
        check_frame(ui, fonts, f"name/{lang}")
    finally:
        ui.close()
