"""What the large screen plays at a given moment: the manifest's schedule, decided in local time.

At any moment the playlist is the scheduled items of the highest priority present, in manifest order: a
priority-10 notice during a closure displaces the everyday items while its window lasts, as a higher
"campaign" does in digital-signage players. An item without ``when`` is always scheduled. When nothing is
scheduled the manifest's ``fallback`` items play; when there are none either, the playlist is empty and
the screen shows its built-in cards.
"""

from __future__ import annotations

from datetime import datetime

from kiosk.content.manifest import Item, Manifest


def scheduled(items: tuple[Item, ...], at: datetime) -> tuple[Item, ...]:
    """Every item whose schedule includes ``at``, of any priority."""
    return tuple(i for i in items if i.when is None or i.when.active(at))


def playlist(manifest: Manifest, at: datetime) -> tuple[Item, ...]:
    """The items to play at ``at`` (a local time), in the order they play."""
    now = scheduled(manifest.items, at)
    if not now:
        return tuple(manifest.item(i) for i in manifest.fallback)
    top = max(i.priority for i in now)
    return tuple(i for i in now if i.priority == top)


def following(items: tuple[Item, ...], current: str | None) -> Item | None:
    """The item to play after the one with id ``current`` in ``items`` (looping); the first when ``current``
    is not among them (it has just left the schedule) or is None; None for an empty playlist."""
    if not items:
        return None
    ids = [i.id for i in items]
    if current in ids:
        return items[(ids.index(current) + 1) % len(items)]
    return items[0]
