"""The schedule across date, weekday and time-of-day boundaries: properties against a plain-text oracle."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.content import ContentError
from kiosk.content.manifest import DAYS, When, parse, parse_when, parse_window
from kiosk.content.schedule import following, playlist, scheduled

SHANGHAI = ZoneInfo("Asia/Shanghai")


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def windows(draw) -> str:
    start = draw(st.integers(0, 1439))
    end = draw(st.integers(start + 1, 1440))
    return f"{hhmm(start)}-{hhmm(end)}"


@st.composite
def whens(draw) -> dict:
    raw: dict = {}
    if draw(st.booleans()):
        raw["from"] = draw(st.dates(date(2026, 1, 1), date(2027, 12, 31))).isoformat()
    if draw(st.booleans()):
        low = date.fromisoformat(raw["from"]) if "from" in raw else date(2026, 1, 1)
        raw["until"] = draw(st.dates(low, date(2027, 12, 31))).isoformat()
    if draw(st.booleans()):
        raw["days"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    if draw(st.booleans()):
        raw["times"] = draw(st.lists(windows(), min_size=1, max_size=3))
    return raw


moments = st.datetimes(datetime(2025, 12, 25), datetime(2028, 1, 5))


def oracle(raw: dict, at: datetime) -> bool:
    """The same rule computed another way: ISO strings compared as text, isoweekday, "HH:MM" strings."""
    day = at.strftime("%Y-%m-%d")
    if "from" in raw and day < raw["from"]:
        return False
    if "until" in raw and day > raw["until"]:
        return False
    if DAYS[at.isoweekday() - 1] not in raw.get("days", DAYS):
        return False
    clock = at.strftime("%H:%M")
    return any(w[:5] <= clock < w[6:] for w in raw.get("times", ["00:00-24:00"]))


@settings(max_examples=400, deadline=None)
@given(whens(), moments)
def test_an_item_is_scheduled_exactly_when_the_oracle_says(raw, at):
    assert parse_when(raw).active(at) == oracle(raw, at)


@settings(max_examples=200, deadline=None)
@given(whens(), st.data())
def test_each_boundary_of_a_window_and_a_date_range_falls_on_the_right_side(raw, data):
    when = parse_when(raw)
    for w in when.windows:
        day = data.draw(st.dates(date(2026, 1, 1), date(2027, 12, 31)))
        midnight = datetime(day.year, day.month, day.day)
        start, end = midnight + timedelta(minutes=w.start), midnight + timedelta(minutes=w.end)
        # the second a window opens, the one before it, its last second and the second it closes
        assert when.active(start) == oracle(raw, start)
        assert when.active(start - timedelta(seconds=1)) == oracle(raw, start - timedelta(seconds=1))
        assert when.active(end - timedelta(seconds=1)) == oracle(raw, end - timedelta(seconds=1))
        assert when.active(end) == oracle(raw, end)
    if when.last is not None:
        last_second = datetime.combine(when.last, datetime.max.time())
        assert not when.active(last_second + timedelta(microseconds=1))


def test_window_edges_by_example():
    when = parse_when({"from": "2026-12-01", "until": "2026-12-31", "days": ["sat"], "times": ["13:00-15:00"]})
    assert when.active(datetime(2026, 12, 5, 13, 0))               # a Saturday, the minute it opens
    assert when.active(datetime(2026, 12, 5, 14, 59, 59))
    assert not when.active(datetime(2026, 12, 5, 15, 0))           # the end is not in the window
    assert not when.active(datetime(2026, 12, 5, 12, 59, 59))
    assert not when.active(datetime(2026, 12, 6, 13, 30))          # Sunday
    assert not when.active(datetime(2026, 11, 28, 13, 30))         # a Saturday before "from"
    assert when.active(datetime(2026, 12, 26, 13, 30))             # the last Saturday in range
    assert not when.active(datetime(2027, 1, 2, 13, 30))           # after "until"
    late = parse_when({"times": ["22:00-24:00", "00:00-02:00"], "days": ["fri"]})
    assert late.active(datetime(2026, 12, 4, 23, 59, 59))          # Friday night
    assert not late.active(datetime(2026, 12, 5, 0, 30))           # Saturday early: its own day's rule
    assert late.active(datetime(2026, 12, 4, 1, 0))                # Friday early


@pytest.mark.parametrize("text, why", [
    ("22:00-02:00", "two windows"), ("09:00-09:00", "ends before"), ("24:00-24:00", "not a time of day"),
    ("9:00-10:00", "not a time window"), ("10:60-11:00", "not a time of day"), ("00:00-24:01", "not a time"),
])
def test_bad_windows_are_refused_with_the_reason(text, why):
    with pytest.raises(ValueError, match=why):
        parse_window(text)


# --- playlists: priorities and the fallback -------------------------------------------------------

def manifest(items: list[dict], fallback: list[str] = ()) -> bytes:
    return json.dumps({"format": 1, "library": "minhang", "version": 7, "assets": {},
                       "items": items, "fallback": list(fallback)}).encode()


@st.composite
def item_lists(draw) -> list[dict]:
    n = draw(st.integers(1, 8))
    out = []
    for i in range(n):
        item = {"id": f"i{i}", "kind": "qr", "title": f"t{i}", "url": "https://lib.example/",
                "priority": draw(st.sampled_from([0, 0, 5, 10]))}
        if draw(st.integers(0, 4)):
            item["when"] = draw(whens())
        out.append(item)
    return out


@settings(max_examples=300, deadline=None)
@given(item_lists(), st.lists(st.integers(0, 7), max_size=3, unique=True), moments)
def test_the_playlist_is_the_top_priority_of_what_is_scheduled(items, fallback_ix, at):
    fallback = [f"i{i}" for i in fallback_ix if i < len(items)]
    m = parse(manifest(items, fallback))
    chosen = playlist(m, at)
    live = [it for it in items if "when" not in it or oracle(it["when"], at)]
    if not live:
        assert [i.id for i in chosen] == fallback
        return
    top = max(it["priority"] for it in live)
    assert [i.id for i in chosen] == [it["id"] for it in live if it["priority"] == top]   # manifest order
    assert {i.id for i in scheduled(m.items, at)} == {it["id"] for it in live}


@settings(max_examples=100, deadline=None)
@given(item_lists(), moments)
def test_following_visits_every_item_once_per_loop(items, at):
    chosen = playlist(parse(manifest(items)), at)
    seen, current = [], None
    for _ in range(len(chosen)):
        at_, nxt = following(chosen, current)
        seen.append(nxt.id)
        current = (at_, nxt.id)
    assert seen == [i.id for i in chosen]
    first = (0, chosen[0]) if chosen else None
    assert following(chosen, current) == first
    assert following(chosen, (0, "gone-from-the-schedule")) == first


# --- interleaved items (every = N) ------------------------------------------------------------------------

@st.composite
def interleaved_lists(draw) -> list[dict]:
    items = draw(item_lists())
    for item in items:
        if draw(st.integers(0, 2)) == 0:
            item["every"] = draw(st.integers(1, 5))
    return items


def _base_between(cycle: list, item_id: str) -> list[int]:
    """How many non-interleaved items stand between consecutive plays of ``item_id``, round the cycle."""
    spots = [n for n, i in enumerate(cycle) if i.id == item_id]
    gaps = []
    for a, b in zip(spots, spots[1:] + [spots[0] + len(cycle)]):
        gaps.append(sum(1 for k in range(a + 1, b) if not cycle[k % len(cycle)].every))
    return gaps


@settings(max_examples=300, deadline=None)
@given(interleaved_lists(), moments)
def test_an_interleaved_item_plays_after_every_n_items_and_displaces_nothing(items, at):
    m = parse(manifest(items))
    cycle = list(playlist(m, at))
    live = [it for it in items if "when" not in it or oracle(it["when"], at)]
    plain = [it for it in live if "every" not in it]
    every = [it for it in live if "every" in it]
    base_ids = ([it["id"] for it in plain if it["priority"] == max(p["priority"] for p in plain)] if plain else [])
    # The everyday playlist is what it would be without the interleaved items, each the same number of times.
    played = [i.id for i in cycle if not i.every]
    if base_ids:
        assert len(played) % len(base_ids) == 0
        assert played == base_ids * (len(played) // len(base_ids))
    for it in every:
        if base_ids:
            assert set(_base_between(cycle, it["id"])) == {it["every"]}
        else:
            assert [i.id for i in cycle].count(it["id"]) == 1     # nothing to interleave with: played in turn
    assert {i.id for i in cycle if i.every} == {it["id"] for it in every}


def test_a_notice_every_three_items_lets_the_videos_play():
    items = [{"id": f"v{n}", "kind": "qr", "title": f"t{n}", "url": "https://lib.example/"} for n in range(4)]
    items.append({"id": "notice", "kind": "qr", "title": "新书", "url": "https://lib.example/", "every": 3,
                  "priority": 10})
    cycle = [i.id for i in playlist(parse(manifest(items)), datetime(2026, 12, 4, 10, 0))]
    assert cycle == ["v0", "v1", "v2", "notice", "v3", "v0", "v1", "notice", "v2", "v3", "v0", "notice",
                     "v1", "v2", "v3", "notice"]
    # The screen follows the cycle by position: from the second notice on, v2 comes next, not v3.
    chosen = playlist(parse(manifest(items)), datetime(2026, 12, 4, 10, 0))
    assert following(chosen, (7, "notice"))[1].id == "v2" and following(chosen, (3, "notice"))[1].id == "v3"


@pytest.mark.parametrize(("videos", "every"), [(97, 89), (499, 100), (7, 100)])
def test_a_notice_at_an_odd_rate_keeps_its_gap_round_the_whole_loop(videos, every):
    """The cycle is the lcm of the playlist and the rate (8,633 and 49,900 items here): no gap is cut short."""
    items = [{"id": f"v{n}", "kind": "qr", "title": f"t{n}", "url": "https://lib.example/"} for n in range(videos)]
    items.append({"id": "notice", "kind": "qr", "title": "新书", "url": "https://lib.example/", "every": every})
    cycle = list(playlist(parse(manifest(items)), datetime(2026, 12, 4, 10, 0)))
    assert set(_base_between(cycle, "notice")) == {every}
    assert [i.id for i in cycle if not i.every][:videos] == [f"v{n}" for n in range(videos)]


def test_a_priority_notice_displaces_the_everyday_items_only_while_it_runs():
    m = parse(manifest([
        {"id": "intro", "kind": "qr", "title": "WeChat", "url": "https://mp.weixin.qq.com/"},
        {"id": "legal", "kind": "qr", "title": "Legal advice", "url": "https://lib.example/legal",
         "when": {"days": ["sat"], "times": ["13:00-15:00"]}},
        {"id": "closed", "kind": "qr", "title": "Closed for the holiday", "url": "https://lib.example/", "priority": 10,
         "when": {"from": "2027-01-01", "until": "2027-01-03"}},
    ], fallback=["intro"]))
    assert [i.id for i in playlist(m, datetime(2026, 12, 5, 13, 0))] == ["intro", "legal"]
    assert [i.id for i in playlist(m, datetime(2026, 12, 5, 15, 0))] == ["intro"]
    assert [i.id for i in playlist(m, datetime(2027, 1, 2, 14, 0))] == ["closed"]
    assert [i.id for i in playlist(m, datetime(2027, 1, 4, 0, 0))] == ["intro"]


def test_the_schedule_runs_on_the_bookcases_local_time_not_utc():
    m = parse(manifest([{"id": "sat", "kind": "qr", "title": "t", "url": "u", "when": {"days": ["sat"]}}],
                       fallback=[]))
    friday_utc = datetime(2026, 12, 4, 16, 30, tzinfo=UTC)   # Saturday 00:30 in Shanghai
    assert playlist(m, friday_utc) == ()
    assert [i.id for i in playlist(m, friday_utc.astimezone(SHANGHAI))] == ["sat"]


@pytest.mark.parametrize("change, message", [
    ({"when": {"from": "2026-12-31", "until": "2026-12-01"}}, "before 'from'"),
    ({"when": {"from": "2026-02-30"}}, "not a calendar date"),
    ({"when": {"times": ["18:00-08:00"]}}, "over midnight is two windows"),
    ({"when": {"days": ["sunday"]}}, "does not match format"),
])
def test_a_bad_schedule_is_refused_naming_the_item(change, message):
    item = {"id": "legal", "kind": "qr", "title": "t", "url": "u", **change}
    with pytest.raises(ContentError, match=message) as err:
        parse(manifest([item]))
    assert "legal" in str(err.value) or "format" in str(err.value)


def test_always_scheduled_items_mean_the_fallback_never_plays():
    m = parse(manifest([{"id": "a", "kind": "qr", "title": "t", "url": "u"},
                        {"id": "b", "kind": "qr", "title": "t", "url": "u", "when": {"days": ["mon"]}}],
                       fallback=["b"]))
    assert [i.id for i in playlist(m, datetime(2026, 12, 1, 3, 0))] == ["a"]            # a Tuesday
    assert isinstance(m.item("b").when, When)
