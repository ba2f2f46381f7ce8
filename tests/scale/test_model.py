"""The circulation model against the library's figures: the day's and the week's shape, 2-5 books a visit,
returns at another bookcase about half the time, children's books for children, the same run for the same seed."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from simulators.scale.model import (DAY_S, JANUARY_RATE, OTHER_BOOKCASE_SHARE, START, Circulation, ModelConfig,
                                    Visit)
from simulators.scale.simclock import LIBRARY_TZ


def model(**kw) -> Circulation:
    return Circulation(ModelConfig(**{"bookcases": 20, "days": 14, "population": 20_000, **kw}))


def test_visits_follow_the_day_and_the_week_and_carry_the_wanted_rate():
    m = model(bookcases=50, rate_per_day=JANUARY_RATE)
    arrivals = m.arrivals()
    hours, days = Counter(), Counter()
    for t, b in arrivals:
        local = datetime.fromtimestamp(START.timestamp() + t, LIBRARY_TZ)
        hours[local.hour] += 1
        days[local.weekday()] += 1
        assert 0 <= b < 50
    assert [t for t, _ in arrivals] == sorted(t for t, _ in arrivals)
    assert sum(hours[h] for h in (18, 19, 20)) > 10 * sum(hours[h] for h in (2, 3, 4))      # evening vs night
    assert days[5] + days[6] > 1.2 * (days[0] + days[1])                                 # weekends busier
    per_day = len(arrivals) / 14 * m.cfg.mean_books
    assert abs(per_day - JANUARY_RATE) < 0.05 * JANUARY_RATE


def test_books_come_back_to_where_they_were_lent_about_half_the_time():
    m = model()
    elsewhere = sum(m._return_bookcase(3) != 3 for _ in range(20_000))
    assert abs(elsewhere / 20_000 - OTHER_BOOKCASE_SHARE) < 0.02
    assert {m._return_bookcase(None) for _ in range(2000)} == set(range(20))            # desk loans: anywhere


def test_a_visit_moves_two_to_five_books_and_children_take_mostly_childrens_books():
    m = model()
    shelf = [i for doors in m.stock for items in doors.values() for i in items]
    kids_share = sum(m.books[i].children for i in shelf) / len(shelf)
    assert abs(kids_share - 0.30) < 0.03
    sizes, child_picks, adult_picks = [], [], []
    for n, (t, b) in enumerate(m.arrivals()[:3000]):
        visit = m.plan(t, b)
        if visit is None:
            continue
        sizes.append(len(visit.returns) + visit.wanted)
        picked = m.pick_loans(visit, list(shelf), visit.wanted)
        assert len(picked) == len(set(picked)) == min(visit.wanted, len(shelf))
        (child_picks if m.cards[visit.user].patron_class == "child" else adult_picks).extend(
            m.books[i].children for i in picked)
        m.done(visit, visit.returns, picked, t)
        for i in picked:
            shelf.remove(i)
    assert sizes and max(sizes) <= 5 and sum(s >= 2 for s in sizes) / len(sizes) > 0.9
    assert sum(child_picks) / len(child_picks) > 0.6 > sum(adult_picks) / len(adult_picks)


def test_the_same_seed_plays_the_same_circulation_and_another_seed_does_not():
    def play(seed: int) -> list[tuple]:
        m = model(seed=seed, days=2)
        out = []
        for t, b in m.arrivals()[:300]:
            v: Visit | None = m.plan(t, b)
            if v is not None:
                out.append((round(t, 3), b, m.cards[v.user].number, tuple(v.returns), v.wanted))
                m.done(v, v.returns, [], t)
        return out
    assert play(7) == play(7) != play(8)


def test_patrons_hold_desk_loans_at_the_start_due_back_during_the_run():
    m = model()
    desk = m.desk_items()
    items = [i for held in desk.values() for i in held]
    assert items and all(i.startswith("MHC") for i in items)
    assert all(0 <= g.due <= 14 * DAY_S + DAY_S for g in m.desk)
    for card, held in desk.items():
        assert len(held) <= m.cards[m.by_card[card]].limit
