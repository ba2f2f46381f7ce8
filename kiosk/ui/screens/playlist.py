"""The attract screen's content: the library's signed playlist (videos, pictures, cards) in order, without a gap."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from zoneinfo import ZoneInfo

import pygame

from kiosk.content import ContentError
from kiosk.content.manifest import Item
from kiosk.content.schedule import following, playlist
from kiosk.content.store import ContentStore, Installed
from kiosk.ui import theme
from kiosk.ui.painter import Painter
from kiosk.ui.screens import cards
from kiosk.ui.screens.base import View, earliest
from kiosk.ui.screens.promo import FactCards, Promo
from kiosk.ui.speaker import Speaker
from kiosk.ui.video import Counts, Video

LOGGER = logging.getLogger(__name__)

CHECK_S = 0.25         # how often the content folder is asked whether new content was installed (a readlink)
PREPARE_S = 1.5        # the next item is opened (a video: decoding its first frame) this long before its turn
WAIT_S = 1 / 30        # how often to look again while the next video decodes its first frame


@dataclass(eq=False)
class _Slot:
    """An item made ready to show, or on screen since ``start`` (the playlist's own time)."""
    item: Item
    video: Video | None = None
    frame: pygame.Surface | None = None       # the video's frame on screen
    start: float = 0.0
    reported: bool = False


class Playlist:
    """``Promo`` over the bookcase's ContentStore: the scheduled items in turn, looping; ``fallback`` (the
    built-in fact cards) when there is no content, nothing scheduled, or nothing that plays.

    The next item is made ready before the current one ends, and the current one stays up (a video: its
    last frame) until the next can show its first: there is never a blank moment between items, nor when
    new content (a new ``store.generation()``) takes over. A file that will not play is logged once and
    skipped. ``wallclock`` gives the aware local time the schedule is decided in. With a ``speaker`` the
    videos' sound plays too; without one they are muted (their sound is not even decoded).
    """

    def __init__(self, store: ContentStore, tz: ZoneInfo, *, wallclock: Callable[[], datetime] | None = None,
                 fallback: Promo | None = None, speaker: Speaker | None = None) -> None:
        self.store = store
        self.speaker = speaker if speaker is not None and speaker.available else None
        self.tz = tz
        self.wallclock = wallclock or (lambda: datetime.now(tz))
        self.fallback: Promo = fallback or FactCards()
        self.pictures = cards.Pictures()
        self._generation: str | None | object = object()     # never equal to a real one: load on first use
        self._installed: Installed | None = None
        self._checked: float | None = None
        self._cur: _Slot | None = None
        self._next: _Slot | None = None
        self._after: tuple[int, str] | None = None   # the next item follows this (position, id); None: the first
        self._placed: tuple[int, str] | None = None  # (position, id) of the item last picked to play next
        self._cut = False                        # new content: the item on screen gives way once it can
        self._waiting = False                    # the current item is over; the next one is not ready yet
        self._bad: set[tuple[str, str]] = set()  # (item id, file) known not to play in this content: skipped quietly
        self._t = 0.0                            # play time: stands still while paused
        self._seen: float | None = None
        self._rect: pygame.Rect | None = None
        self._layout: theme.Layout | None = None
        self._redraw_at = math.inf
        self._closed = Counts()

    # --- Promo ------------------------------------------------------------------------------------

    def draw(self, p: Painter, rect: pygame.Rect, v: View) -> float | None:
        self._rect, self._layout = pygame.Rect(rect), p.L
        self._tick(v.now)
        self._advance()
        slot = self._cur
        if slot is None:
            delay = self.fallback.draw(p, rect, v)
            self._redraw_at = v.now + delay if delay is not None else math.inf
            return earliest(delay, self._poll_s())
        kind = slot.item.kind
        if kind == "video":
            slot.frame = slot.video.frame_at(self._t - slot.start) or slot.frame
            self._sound(slot)
            p.box(rect, theme.PANEL)
            self._blit(p.surface, slot.frame)
            self._redraw_at = math.inf
            return self._poll_s()
        try:
            if kind == "book":
                cards.draw_book(p, rect, slot.item, v, self._cover(slot.item))
            elif kind == "qr":
                cards.draw_qr(p, rect, slot.item, v, self._picture(slot.item))
            else:
                cards.draw_picture(p, rect, self._picture(slot.item))
        except (pygame.error, OSError, ValueError) as exc:      # the file went bad since it was made ready
            self._fail(slot.item, str(exc))
            self._cut = True
            p.box(rect, theme.PANEL)
            return WAIT_S
        left = max(0.0, slot.item.seconds - (self._t - slot.start))
        self._redraw_at = v.now + left
        return earliest(left, self._poll_s())

    def update(self, p: Painter, v: View) -> tuple[list[pygame.Rect], float | None] | None:
        """The region alone, between full draws: a video's next frame blitted where the last one was.
        Returns (rects changed, seconds until the next update), or None when the region needs a full draw."""
        if self._rect is None:
            return None
        self._tick(v.now)
        if self._advance() or v.now >= self._redraw_at:
            return None
        slot = self._cur
        if slot is None or slot.video is None:
            return [], earliest(self._redraw_at - v.now, self._poll_s())
        frame = slot.video.frame_at(self._t - slot.start)
        self._sound(slot)
        if frame is None:
            return [], self._poll_s()
        slot.frame = frame
        return [self._blit(p.surface, frame)], self._poll_s()

    def pause(self) -> None:
        """Off screen (the screen blanked, or another screen up): play time stands still, and the decoders,
        given no frames to hand out, stop once their few frames ahead are decoded."""
        self._seen = None
        if self.speaker is not None:
            self.speaker.pause()

    def close(self) -> None:
        """Stop every decoder (a later draw starts again with the item after the one that was on)."""
        for slot in (self._cur, self._next):
            self._drop(slot)
        self._cur = self._next = None
        self._seen = None

    # --- what tests and the benchmark look at ----------------------------------------------------

    @property
    def showing(self) -> str | None:
        """The id of the item on screen; None while the fallback shows."""
        return self._cur.item.id if self._cur is not None else None

    @property
    def waiting(self) -> bool:
        """The item on screen is over and stays up while the next video decodes its first frame."""
        return self._waiting

    @property
    def decoding(self) -> bool:
        """A video's worker is decoding (it has not got its few frames ahead yet)."""
        return any(slot is not None and slot.video is not None and slot.video.busy for slot in (self._cur, self._next))

    @property
    def rect(self) -> pygame.Rect | None:
        """The region as last drawn."""
        return self._rect

    @property
    def counts(self) -> Counts:
        """Video frames decoded, shown, dropped and late, over every video played so far."""
        total = Counts(**vars(self._closed))
        for slot in (self._cur, self._next):
            if slot is not None and slot.video is not None:
                for f in fields(Counts):
                    setattr(total, f.name, getattr(total, f.name) + getattr(slot.video.counts, f.name))
        return total

    # --- the sequence -----------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        if self._seen is not None and now > self._seen:
            self._t += now - self._seen
        self._seen = now
        if self._checked is None or not 0 <= now - self._checked < CHECK_S:
            self._checked = now
            generation = self.store.generation()
            if generation != self._generation:
                self._load(generation)

    def _load(self, generation: str | None) -> None:
        self._generation = generation
        self._installed = None
        try:
            self._installed = self.store.current() if generation is not None else None
        except (ContentError, OSError) as exc:
            LOGGER.error("the screen's installed content (%s) cannot be played: %s; showing the built-in cards "
                         "until new content is installed", generation, exc)
        if self._installed is not None:
            m = self._installed.manifest
            LOGGER.info("screen content: version %d of %s, %d items", m.version, m.library, len(m.items))
        self._drop(self._next)
        self._next = None
        self._after = None
        self._cut = self._cur is not None
        self._bad.clear()                        # new content: every file gets its chance (and its log line)

    def _items(self) -> tuple[Item, ...]:
        if self._installed is None:
            return ()
        return playlist(self._installed.manifest, self.wallclock().astimezone(self.tz))

    def _pick(self, items: tuple[Item, ...]) -> Item | None:
        """The item to play after ``_after``, passing over the ones known not to play; its position is kept
        for when it goes on screen (``_placed``)."""
        found = following(items, self._after)
        for _ in items:
            if found is None:
                return None
            at, item = found
            if self._key(item) not in self._bad:
                self._placed = (at, item.id)
                return item
            found = following(items, (at, item.id))
        return None

    def _advance(self) -> bool:
        """Move the sequence on; True if the item on screen changed (or went to or from the fallback)."""
        cur = self._cur
        self._waiting = False
        if cur is not None and not self._over(cur):
            left = self._left(cur)
            if self._next is None and (left is None or left <= PREPARE_S):
                self._prepare(self._pick(self._items()))
            return False
        items = self._items()
        for _ in range(len(items) + 1):
            item = self._pick(items)
            if item is None:
                break
            if self._next is None or self._next.item is not item:
                self._drop(self._next)
                self._next = None
                self._prepare(item)
            slot = self._next
            if slot is None:                       # it failed at once (a picture that does not load)
                continue
            video = slot.video
            if video is not None and not video.first_ready:
                if not video.ended:
                    self._waiting = True           # keep the current item up until the first frame is there
                    return False
                self._fail(item, video.error or "the file holds no picture")
                self._drop(slot)
                self._next = None
                continue
            self._drop(cur)
            slot.start, self._cur, self._next, self._after, self._cut = self._t, slot, None, self._placed, False
            return True
        self._cut = False
        if cur is None:
            return False
        self._drop(cur)
        self._cur = None                           # nothing plays: the fallback
        return True

    def _over(self, slot: _Slot) -> bool:
        if self._cut:
            return True
        elapsed = self._t - slot.start
        if slot.item.seconds is not None and elapsed >= slot.item.seconds:
            return True
        video = slot.video
        if video is None or not video.ended:
            return False
        if video.error and not slot.reported:
            slot.reported = True
            LOGGER.warning("content item %r (%s) stopped early: %s", slot.item.id, slot.item.asset, video.error)
        return video.last_pts is None or elapsed >= video.last_pts + video.frame_s

    def _left(self, slot: _Slot) -> float | None:
        """Seconds until the item on screen ends; None if not known yet."""
        ends = [slot.item.seconds]
        if slot.video is not None:
            ends.append(slot.video.duration_s)
        known = [e for e in ends if e is not None]
        return min(known) - (self._t - slot.start) if known else None

    def _poll_s(self) -> float:
        if self._waiting:
            return WAIT_S
        if self._cur is not None and self._cur.video is not None:
            return self._cur.video.frame_s / 2       # look twice a frame: no beat against the loop's own rate
        return CHECK_S

    # --- making items ready -----------------------------------------------------------------------

    def _key(self, item: Item) -> tuple[str, str]:
        return item.id, item.asset or item.url or ""

    def _prepare(self, item: Item | None) -> None:
        """Open the next item: a video starts decoding; a picture or a card's pictures are made now."""
        if item is None or self._rect is None:
            return
        slot = _Slot(item)
        try:
            if item.kind == "video":
                slot.video = Video(self._installed.path(item.asset), self._rect.size, name=item.asset,
                                   sound=self.speaker.format if self.speaker is not None else None).start()
            elif item.kind == "book":
                self._cover(item)
            else:
                self._picture(item)
        except (pygame.error, OSError, ValueError) as exc:
            self._fail(item, str(exc) or type(exc).__name__)
            return
        self._next = slot

    def _picture(self, item: Item) -> pygame.Surface:
        """An image item's picture, or a QR card's code, at this card's size."""
        rect = self._rect
        if item.kind == "qr":
            side = cards.qr_side(self._layout, rect)
            return self.pictures.get(("qr", item.url, side), lambda: cards.qr_picture(item.url, side))
        path = self._installed.path(item.asset)
        return self.pictures.get((path, rect.size), lambda: cards.load_picture(path, item.asset, rect.size))

    def _cover(self, item: Item) -> pygame.Surface | None:
        """A book's cover at this card's size; None (a placeholder is drawn) if it has none or it will not load."""
        if not item.cover or (item.id, item.cover) in self._bad:
            return None
        box = cards.book_boxes(self._layout, self._rect)[0].size
        path = self._installed.path(item.cover)
        try:
            return self.pictures.get((path, box), lambda: cards.load_picture(path, item.cover, box))
        except (pygame.error, OSError) as exc:
            self._bad.add((item.id, item.cover))
            LOGGER.warning("content item %r: the cover %s (%s) cannot be shown: %s; showing the title instead",
                           item.id, item.cover, path, exc)
            return None

    def _fail(self, item: Item, why: str) -> None:
        key = self._key(item)
        if key in self._bad:
            return
        self._bad.add(key)
        where = f"{item.asset} ({self._installed.path(item.asset)})" if item.asset and self._installed else key[1]
        LOGGER.warning("content item %r cannot be shown and is skipped: %s: %s", item.id, where, why)

    def _sound(self, slot: _Slot) -> None:
        if self.speaker is not None and slot.video is not None:
            self.speaker.feed(slot.video)

    def _drop(self, slot: _Slot | None) -> None:
        if slot is None or slot.video is None:
            return
        if self.speaker is not None:
            self.speaker.stop(slot.video)
        slot.video.close()
        for f in fields(Counts):
            setattr(self._closed, f.name, getattr(self._closed, f.name) + getattr(slot.video.counts, f.name))
        slot.video = None

    def _blit(self, surface: pygame.Surface, frame: pygame.Surface | None) -> pygame.Rect:
        """``frame`` centred in the region (clipped to it); the rect it covers."""
        rect = self._rect
        if frame is None:
            return pygame.Rect(rect.center, (0, 0))
        dest = frame.get_rect(center=rect.center)
        if rect.contains(dest):
            surface.blit(frame, dest)
            return dest
        clip = surface.get_clip()
        surface.set_clip(rect)
        surface.blit(frame, dest)
        surface.set_clip(clip)
        return dest.clip(rect)
