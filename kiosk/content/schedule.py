"""What the large screen plays at a given moment: the manifest's schedule, decided in local time.

At any moment the playlist is the scheduled items of the highest priority present, in manifest order: a
priority-10 notice during a closure displaces the everyday items while its window lasts, as a higher
"campaign" does in digital-signage players. An item without ``when`` is always scheduled. When nothing is
scheduled the manifest's ``fallback`` items play; when there are none either, the playlist is empty and
the screen shows its built-in cards.

An item with ``every = N`` is **interleaved** instead: while scheduled, it plays once after every N items of
that playlist and displaces nothing (a new-books notice among the day's videos). Its priority does not count.
The playlist is then one whole cycle: each playlist item the same number of times, each interleaved item
after every N of them; an interleaved item may stand in it more than once, so the screen follows the cycle
by position (``following``). The cycle is exact (every gap N, round the loop too) whenever it is at most
``MAX_CYCLE`` items, which covers one interleaved item at any rate over the largest manifest; several at
co-prime rates may need more, and then the cycle is cut at a whole number of playlist rounds: once a loop,
an interleaved item's gap across the cut is shorter than N.
"""

from __future__ import annotations

import functools
from datetime import datetime
from math import lcm

from kiosk.content.manifest import Item, Manifest

MAX_CYCLE = 50_000       # items in one cycle at most: 500 manifest items (its maxItems) x every = 100 (its maximum)


def scheduled(items: tuple[Item, ...], at: datetime) -> tuple[Item, ...]:
    """Every item whose schedule includes ``at``, of any priority."""
    return tuple(i for i in items if i.when is None or i.when.active(at))


def playlist(manifest: Manifest, at: datetime) -> tuple[Item, ...]:
    """The items to play at ``at`` (a local time), in the order they play: one cycle."""
    now = scheduled(manifest.items, at)
    interleaved = tuple(i for i in now if i.every)
    plain = tuple(i for i in now if not i.every)
    if plain:
        top = max(i.priority for i in plain)
        base = tuple(i for i in plain if i.priority == top)
    else:
        base = tuple(manifest.item(i) for i in manifest.fallback if not manifest.item(i).every)
    return interleave(base, interleaved)


@functools.lru_cache(maxsize=16)       # the screen asks at each item change; the schedule changes seldom
def interleave(base: tuple[Item, ...], interleaved: tuple[Item, ...]) -> tuple[Item, ...]:
    """One cycle of ``base`` with each of ``interleaved`` after every ``every`` base items (in manifest order
    when several fall at the same point)."""
    if not interleaved or not base:
        return base + interleaved
    steps = lcm(len(base), *(i.every for i in interleaved))
    if steps > MAX_CYCLE:
        steps = max(len(base), (MAX_CYCLE // len(base)) * len(base))
    cycle: list[Item] = []
    for n in range(1, steps + 1):
        cycle.append(base[(n - 1) % len(base)])
        cycle += [i for i in interleaved if n % i.every == 0]
    return tuple(cycle)


def following(items: tuple[Item, ...], after: tuple[int, str] | None) -> tuple[int, Item] | None:
    """The position and item to play after the one at ``after`` = (position, id) in ``items``, looping.

    When the playlist has changed under it (the item is no longer at that position), the item after the
    first place that id now stands, or the start when it left the schedule; None for an empty playlist."""
    if not items:
        return None
    if after is not None:
        at, item_id = after
        if not (0 <= at < len(items) and items[at].id == item_id):
            ids = [i.id for i in items]
            at = ids.index(item_id) if item_id in ids else -1
        nxt = (at + 1) % len(items)
    else:
        nxt = 0
    return nxt, items[nxt]
