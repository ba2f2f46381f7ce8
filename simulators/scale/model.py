"""The library's circulation as the fleet simulator plays it, from the library's own figures (docs/design.md §9, §11).

- Patrons: cards drawn from a population of 180,000 (135,404 central-library and 47,920 branch cards in 2020);
  about 30 % children's cards, a quarter of the adults' branch cards (loan limits 10 and 15, kiosk.demodata).
- Rates: loans plus returns a day, fleet-wide: the year's 865,124 over 366 days (2,364 a day) or the busiest
  month's, January 2020's 180,474 over 31 days (5,822 a day). Visits arrive as a Poisson process whose rate
  follows the hour of the day and the day of the week: quiet at night, a peak after work (18–21 h), busier at
  weekends, when the peak spreads over the afternoon.
- A visit moves 2 to 5 books. Books lent together are brought back together, to the bookcase they were
  borrowed from about half the time and to another (drawn by how busy the bookcases are) otherwise, decided
  when they fall due; a patron whose books are due at the visited bookcase brings them and borrows the rest of
  the visit's books; otherwise a card of the bookcase's neighbourhood borrows them all (some cards far more
  often than others).
- Stock: each bookcase's doors start ``fill`` full; 30 % of the books are children's, and children borrow mostly
  those, adults seldom, so that about 30 % of loans are children's books.
- Warm-up: a simulation that starts with no loans out would see only loans for weeks. So patrons start holding
  books lent at the library's desks ("desk loans", items MHC…, known to the ILS) that they bring back to the
  bookcases over the first loan periods, as borrow-anywhere-return-anywhere (通借通还) lets them.
- Loan periods: a mean of ``max_loan_days`` (21) at most, shorter when the fleet's stock could not otherwise
  carry the rate (half the stock out at a time): 20 bookcases carrying the whole branch network's year lend
  each book for about two days.

Everything is drawn from one seeded generator: the same configuration plays the same circulation.
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import datetime

from kiosk.demodata import CHILDREN_TITLES, GENERAL_TITLES, PATRON_CLASS_LIMITS, RECOMMENDED_TITLES
from simulators.scale.simclock import LIBRARY_TZ

POPULATION = 180_000                 # valid reader cards, end of 2020: 135,404 + 47,920, rounded
YEAR_2020 = 865_124                  # loans + returns through the branch network in 2020
YEAR_DAYS = 366
JANUARY_2020 = 180_474               # the busiest month before the closure
JANUARY_DAYS = 31
YEAR_RATE = YEAR_2020 / YEAR_DAYS              # 2,364 a day
JANUARY_RATE = JANUARY_2020 / JANUARY_DAYS     # 5,822 a day
CHILDREN_SHARE = 0.30                # of loans, of new cards, of the bookcases' stock
BRANCH_SHARE = 47_920 / (135_404 + 47_920)     # of the adults' cards
OTHER_BOOKCASE_SHARE = 0.5           # returns at another bookcase than the loan's
SESSION_BOOKS = (2, 5)
CHILD_PICKS_CHILDREN = 0.8           # a child's loan is a children's book this often, an adult's ADULT_PICKS_CHILDREN
ADULT_PICKS_CHILDREN = (CHILDREN_SHARE - CHILDREN_SHARE * CHILD_PICKS_CHILDREN) / (1 - CHILDREN_SHARE)
DAY_S = 86_400.0
START = datetime(2020, 1, 6, tzinfo=LIBRARY_TZ)       # a Monday of the busiest month

# Visits per hour of the day (relative). Weekdays: a morning bump, lunch, the evening peak after work.
WEEKDAY_HOURS = (0.05, 0.02, 0.01, 0.01, 0.01, 0.03, 0.15, 0.50, 0.80, 0.90, 1.00, 1.10,
                 1.20, 1.00, 0.90, 1.00, 1.30, 1.80, 2.60, 3.00, 2.80, 2.00, 0.90, 0.30)
# Weekends: a late start, a long afternoon, the same evening.
WEEKEND_HOURS = (0.08, 0.03, 0.01, 0.01, 0.01, 0.02, 0.08, 0.30, 0.90, 1.60, 2.00, 2.10,
                 1.90, 2.00, 2.20, 2.30, 2.30, 2.20, 2.50, 2.70, 2.40, 1.70, 0.90, 0.35)
WEEK_DAYS = (1.0, 0.95, 1.0, 1.0, 1.1, 1.45, 1.4)     # Monday .. Sunday


def hour_weight(t: float, start: datetime) -> float:
    """Relative visit rate at simulated second ``t``: its hour's weight times its weekday's."""
    when = start.timestamp() + t
    local = datetime.fromtimestamp(when, LIBRARY_TZ)
    hours = WEEKEND_HOURS if local.weekday() >= 5 else WEEKDAY_HOURS
    return hours[local.hour] * WEEK_DAYS[local.weekday()]


def _week_mean() -> float:
    """The mean of hour_weight over a week: a rate per day divided by it gives the rate at weight 1."""
    total = sum(WEEK_DAYS[d] * sum(WEEKEND_HOURS if d >= 5 else WEEKDAY_HOURS) for d in range(7))
    return total / (7 * 24)


WEEK_MEAN = _week_mean()


@dataclass(frozen=True)
class ModelConfig:
    bookcases: int = 500
    days: float = 1.0
    rate_per_day: float = JANUARY_RATE      # loans + returns a day, the whole fleet
    start: datetime = START
    population: int = POPULATION
    users: int | None = None                # cards that use the bookcases in the run (None: from the visits)
    doors: int = 5
    capacity: int = 80
    fill: float = 0.7
    max_loan_days: float = 21.0
    desk_loans: bool = True
    seed: int = 2020

    @property
    def mean_books(self) -> float:
        return sum(SESSION_BOOKS) / 2

    @property
    def visits_per_day(self) -> float:
        return self.rate_per_day / self.mean_books

    @property
    def stock(self) -> int:
        return self.bookcases * self.doors * int(self.capacity * self.fill)

    @property
    def loan_days(self) -> float:
        """The mean loan period: at most ``max_loan_days``, and short enough that half the stock is out."""
        loans_per_day = self.rate_per_day / 2
        return max(0.25, min(self.max_loan_days, 0.5 * self.stock / loans_per_day))

    @property
    def user_count(self) -> int:
        if self.users is not None:
            return min(self.users, self.population)
        return min(self.population, 20_000, max(200, int(self.visits_per_day * self.days / 2)))


@dataclass(frozen=True)
class Book:
    item: str
    title: str
    author: str
    children: bool


@dataclass(frozen=True)
class Card:
    number: str                 # the reader card's barcode: the ILS's patron id
    patron_class: str
    home: int                   # the bookcase of the card holder's neighbourhood (index)

    @property
    def limit(self) -> int:
        return PATRON_CLASS_LIMITS[self.patron_class]


@dataclass
class Group:
    """Books one patron took in one session (or at a desk), due back together."""
    id: int
    user: int
    items: list[str]
    bookcase: int | None        # where they were borrowed; None: the library's desk
    due: float
    open: bool = True
    returns_at: int = 0         # the bookcase they are brought back to


@dataclass
class Visit:
    """One patron at one bookcase: what they bring back and how many books they want."""
    t: float
    bookcase: int
    user: int
    returns: list[str]
    group: Group | None
    wanted: int
    extra: str | None = None    # something ambiguous on purpose: "junk" (a foreign tag), "over_limit"
    take: str | None = None     # an item this visit takes whatever else it wants (the ILS's refused item)


def card_number(index: int) -> str:
    """The 13-digit card of population member ``index``."""
    return f"31011{index:08d}"


def card_class(index: int) -> str:
    h = (index * 2654435761 % 2 ** 32) / 2 ** 32
    if h < CHILDREN_SHARE:
        return "child"
    return "branch" if h < CHILDREN_SHARE + (1 - CHILDREN_SHARE) * BRANCH_SHARE else "adult"


def bookcase_id(index: int) -> str:
    return f"MH-{index + 1:04d}"


class Circulation:
    """The model's state while a run plays it: who holds which books, who is due back, where."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        members = self.rng.sample(range(cfg.population), cfg.user_count)
        self.cards = [Card(card_number(m), card_class(m), i % cfg.bookcases) for i, m in enumerate(members)]
        self.by_card = {c.number: i for i, c in enumerate(self.cards)}
        self.neighbours: list[list[int]] = [[] for _ in range(cfg.bookcases)]
        for i, card in enumerate(self.cards):
            self.neighbours[card.home].append(i)
        self.books: dict[str, Book] = {}
        self.held: dict[int, set[str]] = {}          # user -> items they hold
        self.groups: dict[int, Group] = {}
        self._due_at: list[list[tuple[float, int]]] = [[] for _ in range(cfg.bookcases)]
        self.busy: set[int] = set()
        weights = [self.rng.lognormvariate(0, 0.4) for _ in range(cfg.bookcases)]
        total = sum(weights)
        self._cumulative = [sum(weights[:i + 1]) / total for i in range(cfg.bookcases)]
        self.stock = self._stock()
        self.desk = self._desk_loans() if cfg.desk_loans else []

    # --- the start: stock and desk loans -------------------------------------------------------------

    def _title(self, n: int, children: bool) -> tuple[str, str]:
        pool = CHILDREN_TITLES if children else RECOMMENDED_TITLES + GENERAL_TITLES
        entry = pool[n % len(pool)]
        return entry[0], entry[1]

    def _stock(self) -> list[dict[int, list[str]]]:
        """Each bookcase's books behind each door (door numbers from 1)."""
        per_door = int(self.cfg.capacity * self.cfg.fill)
        out = []
        for b in range(self.cfg.bookcases):
            doors: dict[int, list[str]] = {}
            n = 0
            for door in range(1, self.cfg.doors + 1):
                items = []
                for _ in range(per_door):
                    n += 1
                    children = self.rng.random() < CHILDREN_SHARE
                    title, author = self._title(n, children)
                    book = Book(f"MH{b + 1:04d}{n:04d}", title, author, children)
                    self.books[book.item] = book
                    items.append(book.item)
                doors[door] = items
            out.append(doors)
        return out

    def _desk_loans(self) -> list[Group]:
        """Books lent at the library's desks before the run, brought back to the bookcases during it: as many as
        the steady state has out (the loans a day times the loan period), at most what the shelves have room
        for, due back spread over two loan periods. Only those due within the run are made."""
        cfg = self.cfg
        free = cfg.bookcases * cfg.doors * (cfg.capacity - int(cfg.capacity * cfg.fill))
        out_now = min(cfg.rate_per_day / 2 * cfg.loan_days, 0.8 * free)
        span = 2 * cfg.loan_days * DAY_S
        groups: list[Group] = []
        n = 0
        while n < out_now:
            due = self.rng.uniform(0, span)
            size = self.rng.randint(1, 3)
            n += size
            if due > cfg.days * DAY_S:
                continue
            user = self.rng.randrange(len(self.cards))
            if len(self.held.get(user, ())) + size > self.cards[user].limit // 2:
                continue
            items = []
            for _ in range(size):
                children = self.rng.random() < CHILDREN_SHARE
                title, author = self._title(len(self.books), children)
                book = Book(f"MHC{len(self.books):07d}", title, author, children)
                self.books[book.item] = book
                items.append(book.item)
            groups.append(self._lend(user, items, None, self._due_time(due)))
        return groups

    # --- arrivals --------------------------------------------------------------------------------------

    def arrivals(self) -> list[tuple[float, int]]:
        """Every visit of the run: (simulated second, bookcase index), in time order. A Poisson process thinned
        by the hour's weight, so the day and the week have their shape."""
        cfg = self.cfg
        peak = max(max(WEEKDAY_HOURS) * max(WEEK_DAYS[:5]), max(WEEKEND_HOURS) * max(WEEK_DAYS[5:]))
        rate_s = cfg.visits_per_day / DAY_S / WEEK_MEAN          # visits a second at weight 1
        if cfg.days < 7:
            # Less than a week: the run's days carry the rate on average, whichever weekdays they are.
            hours = max(1, round(cfg.days * 24))
            mean = sum(hour_weight(h * 3600 + 1800, cfg.start) for h in range(hours)) / hours
            rate_s *= WEEK_MEAN / mean
        out, t, end = [], 0.0, cfg.days * DAY_S
        while True:
            t += self.rng.expovariate(rate_s * peak)
            if t >= end:
                return out
            if self.rng.random() * peak < hour_weight(t, cfg.start):
                out.append((t, bisect.bisect_left(self._cumulative, self.rng.random())))

    # --- visits ---------------------------------------------------------------------------------------

    def plan(self, t: float, bookcase: int) -> Visit | None:
        """Who comes at ``t`` to ``bookcase``, with what. None: nobody could (every neighbour is busy)."""
        size = self.rng.randint(*SESSION_BOOKS)
        group = self._due(self._due_at[bookcase], t)
        if group is not None:
            user = group.user
            returns = [i for i in group.items if i in self.held.get(user, ())]
            group.open = False
        else:
            user = self._neighbour(bookcase)
            if user is None:
                return None
            returns = []
        card = self.cards[user]
        room = card.limit - (len(self.held.get(user, ())) - len(returns))
        wanted = max(0, min(size - len(returns), room)) if len(returns) < size else 0
        self.busy.add(user)
        return Visit(t, bookcase, user, returns[:SESSION_BOOKS[1]], group, wanted)

    def _due(self, heap: list[tuple[float, int]], t: float) -> Group | None:
        skipped = []
        found = None
        while heap and heap[0][0] <= t:
            due, gid = heapq.heappop(heap)
            group = self.groups.get(gid)
            if group is None or not group.open:
                continue
            if group.user in self.busy:
                skipped.append((due, gid))
                continue
            found = group
            break
        for entry in skipped:
            heapq.heappush(heap, entry)
        return found

    def _neighbour(self, bookcase: int) -> int | None:
        pool = self.neighbours[bookcase] or range(len(self.cards))
        for _ in range(8):
            # Some cards come far more often than others: the k-th of the neighbourhood about 1/k as often.
            user = pool[min(len(pool) - 1, int(len(pool) * self.rng.random() ** 3))]
            if user not in self.busy:
                return user
        return None

    def pick_loans(self, visit: Visit, shelf: list[str], n: int) -> list[str]:
        """``n`` books from ``shelf`` for this visit's patron: children's books mostly for a child."""
        if visit.take in shelf:
            n = max(n, 1)
        if n <= 0 or not shelf:
            return []
        child = self.cards[visit.user].patron_class == "child"
        p = CHILD_PICKS_CHILDREN if child else ADULT_PICKS_CHILDREN
        kids = [i for i in shelf if self.books[i].children]
        grown = [i for i in shelf if not self.books[i].children]
        chosen: list[str] = []
        if visit.take in shelf:
            chosen.append(visit.take)
        while len(chosen) < n and (kids or grown):
            pool = kids if (self.rng.random() < p and kids) or not grown else grown
            item = pool.pop(self.rng.randrange(len(pool)))
            if item not in chosen:
                chosen.append(item)
        return chosen

    def done(self, visit: Visit, returned: list[str], borrowed: list[str], t: float) -> None:
        """The visit is over: these books came back, these left with the patron."""
        user = visit.user
        held = self.held.setdefault(user, set())
        held.difference_update(returned)
        kept = [i for i in visit.returns if i not in returned]
        if kept and visit.group is not None:         # not all fitted (a full door): brought back another day
            visit.group.items, visit.group.open = kept, True
            self._queue(visit.group, t + DAY_S)
        if borrowed:
            days = self.rng.uniform(0.2, 1.8) * self.cfg.loan_days
            self._lend(user, borrowed, visit.bookcase, self._due_time(t + days * DAY_S))
        self.busy.discard(user)

    def abandon(self, visit: Visit, t: float) -> None:
        """The visit did not happen (the card was refused, the bookcase out of order): nothing moved."""
        if visit.group is not None and visit.returns:
            visit.group.open = True
            self._queue(visit.group, t + DAY_S / 4)
        self.busy.discard(visit.user)

    def _lend(self, user: int, items: list[str], bookcase: int | None, due: float) -> Group:
        group = Group(len(self.groups) + 1, user, list(items), bookcase, due)
        self.groups[group.id] = group
        self.held.setdefault(user, set()).update(items)
        self._queue(group, due)
        return group

    def _queue(self, group: Group, due: float) -> None:
        group.due = due
        group.returns_at = self._return_bookcase(group.bookcase)
        heapq.heappush(self._due_at[group.returns_at], (due, group.id))

    def _return_bookcase(self, lent_at: int | None) -> int:
        """Where books lent at ``lent_at`` (None: a desk) come back: there about half the time, otherwise another
        bookcase, the busier ones more often."""
        if lent_at is not None and (self.cfg.bookcases == 1 or self.rng.random() >= OTHER_BOOKCASE_SHARE):
            return lent_at
        for _ in range(8):
            b = min(self.cfg.bookcases - 1, bisect.bisect_left(self._cumulative, self.rng.random()))
            if b != lent_at:
                return b
        return (lent_at + 1) % self.cfg.bookcases if lent_at is not None else 0

    def _due_time(self, t: float) -> float:
        """A time on the day of ``t`` (or the next) at an hour drawn from that day's shape: patrons bring books
        back when they come anyway."""
        day = math.floor(t / DAY_S)
        for _ in range(3):
            weights = [hour_weight(day * DAY_S + h * 3600, self.cfg.start) for h in range(24)]
            hour = self.rng.choices(range(24), weights)[0]
            due = day * DAY_S + hour * 3600 + self.rng.uniform(0, 3600)
            if due >= t - DAY_S / 2:
                return max(due, 0.0)
            day += 1
        return t

    # --- views ---------------------------------------------------------------------------------------

    def outstanding(self, user: int) -> int:
        return len(self.held.get(user, ()))

    def card(self, user: int) -> Card:
        return self.cards[user]

    def desk_items(self) -> dict[str, list[str]]:
        """Card -> items lent at the desks and held at the start (the ILS's loans before the run)."""
        out: dict[str, list[str]] = {}
        for group in self.desk:
            out.setdefault(self.cards[group.user].number, []).extend(group.items)
        return out


@dataclass
class Tally:
    """What the model made happen, for the report: visits, books, returns elsewhere, children's share."""
    visits: int = 0
    visits_failed: int = 0
    loans: int = 0
    returns: int = 0
    returns_elsewhere: int = 0
    returns_of_bookcase_loans: int = 0
    children_loans: int = 0
    by_hour: list[int] = field(default_factory=lambda: [0] * 24)
    by_weekday: list[int] = field(default_factory=lambda: [0] * 7)
