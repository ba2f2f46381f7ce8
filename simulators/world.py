"""The simulated world behind the devices: books, compartments, doors and locks, under one lock."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiosk.demodata import DEMO_COUNTRY, DEMO_ISIL, demo_books, uid_for
from simulators.errors import SimError

if TYPE_CHECKING:
    from kiosk.config import Config

LOGGER = logging.getLogger(__name__)

TAG_BYTES = 32
UNLOCK_PULSE_MS = 500      # Kerong boards energise the lock this long (config: lockboard.unlock_pulse_ms)
DOOR_POP_DELAY_MS = 200    # the spring pushes the door open this long after the unlock
REVERSED_TAG_SHARE = 0.1   # share of demo tags that store each 4-byte block reversed
JUNK_PREFIX = "JUNK-"      # item id given to a foreign tag: "JUNK-" + its UID in hex


@dataclass
class Book:
    """One tagged item. ``tag_data`` is the 32 bytes of tag memory, in tag memory order."""

    item_id: str
    title: str
    author: str
    uid: bytes
    tag_data: bytes
    reversed_blocks: bool = False
    flaky: bool = False

    def __post_init__(self) -> None:
        if len(self.uid) != 8 or self.uid[0] != 0xE0:
            raise ValueError(f"{self.item_id}: an ISO 15693 UID is 8 bytes starting E0, got {self.uid.hex()}")
        if len(self.tag_data) != TAG_BYTES:
            raise ValueError(f"{self.item_id}: tag data must be {TAG_BYTES} bytes, got {len(self.tag_data)}")


@dataclass
class Compartment:
    """One door, its lock, its reader and what is behind it. Times are seconds of the world's clock."""

    door: int
    board: int
    lock: int
    reader: int
    capacity: int
    items: list[str] = field(default_factory=list)
    door_open: bool = False
    forced: bool = False                 # opened without an unlock command, until closed
    unlocked_until: float | None = None  # end of the current unlock pulse
    pops_at: float | None = None         # when the spring pushes the unlocked door open
    rounds: int = 0                      # inventory rounds its reader has taken

    @property
    def locked(self) -> bool:
        """The latch is engaged: no unlock pulse is running (an open door re-latches when closed)."""
        return self.unlocked_until is None


class World:
    """Books, compartments and doors. Every public method takes the one lock; safe from any thread.

    Door timing follows a Kerong board with spring-loaded doors: ``unlock`` energises the lock for
    ``unlock_pulse_ms``; the door pops open ``pop_delay_ms`` after the unlock; the lock re-latches when
    the pulse ends and the door is locked again once closed. Timers are applied lazily against
    ``clock`` (monotonic seconds) on every call, so a fake clock makes tests exact.
    """

    def __init__(self, compartments: Iterable[Compartment], books: Iterable[Book] = (), *,
                 unlock_pulse_ms: float = UNLOCK_PULSE_MS, pop_delay_ms: float = DOOR_POP_DELAY_MS,
                 seed: int = 0, clock: Callable[[], float] = time.monotonic,
                 on_event: Callable[[str], None] | None = None, info: dict[str, Any] | None = None) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._rng = random.Random(seed)
        self.unlock_pulse_s = unlock_pulse_ms / 1000
        self.pop_delay_s = pop_delay_ms / 1000
        self.on_event = on_event
        self.info = dict(info or {})
        self._doors: dict[int, Compartment] = {}
        self._by_reader: dict[int, Compartment] = {}
        self._by_lock: dict[tuple[int, int], Compartment] = {}
        for comp in compartments:
            self._doors[comp.door] = comp
            self._by_reader[comp.reader] = comp
            self._by_lock[(comp.board, comp.lock)] = comp
        self._books: dict[str, Book] = {}
        self._by_uid: dict[bytes, str] = {}
        self._where: dict[str, int | None] = {}   # item -> door, None = outside the bookcase
        self._flaky_rounds: dict[str, int] = {}   # item -> inventory rounds since it became flaky
        self._last_seen: dict[int, set[bytes]] = {}  # reader -> UIDs seen in its last round
        for comp in self._doors.values():
            for item in comp.items:
                self._where[item] = comp.door
        for book in books:
            self.add_book(book, door=self._where.get(book.item_id))

    # ----------------------------------------------------------------- building

    @classmethod
    def from_config(cls, cfg: Config, *, seed: int = 0, books_per_door: int = 60, empty: bool = False,
                    pop_delay_ms: float = DOOR_POP_DELAY_MS, clock: Callable[[], float] = time.monotonic,
                    on_event: Callable[[str], None] | None = None) -> World:
        """A world for ``cfg``'s doors, stocked with ``kiosk.demodata`` books (``empty``: all outside)."""
        from kiosk.drivers.rfid.tag import LibraryTag

        for door in cfg.doors:
            if books_per_door > door.capacity and not empty:
                raise SimError(f"{books_per_door} books per door do not fit door {door.number} "
                               f"(capacity {door.capacity})")
        comps = [Compartment(door=d.number, board=d.board, lock=d.lock, reader=d.reader, capacity=d.capacity)
                 for d in cfg.doors]
        rng = random.Random(seed)
        world = cls(comps, unlock_pulse_ms=cfg.lockboard.unlock_pulse_ms, pop_delay_ms=pop_delay_ms,
                    seed=seed, clock=clock, on_event=on_event,
                    info={"library": cfg.library, "bookcase": cfg.bookcase.id, "name": cfg.bookcase.name})
        for demo in demo_books([d.number for d in cfg.doors], books_per_door):
            reversed_blocks = rng.random() < REVERSED_TAG_SHARE
            tag = LibraryTag(demo.item_id, country=DEMO_COUNTRY, isil=DEMO_ISIL)
            book = Book(item_id=demo.item_id, title=demo.title, author=demo.author, uid=uid_for(demo.item_id),
                        tag_data=tag.encode(reversed_blocks=reversed_blocks), reversed_blocks=reversed_blocks)
            world.add_book(book, door=None if empty else demo.door)
        return world

    def add_book(self, book: Book, door: int | None = None) -> None:
        """Register a tagged item, behind ``door`` or outside the bookcase (None)."""
        with self._lock:
            if book.item_id in self._books:
                raise SimError(f"item {book.item_id} already exists")
            if book.uid in self._by_uid:
                raise SimError(f"UID {book.uid.hex().upper()} is already on item {self._by_uid[book.uid]}")
            self._books[book.item_id] = book
            self._by_uid[book.uid] = book.item_id
            self._where[book.item_id] = None
            if door is not None:
                comp = self._door(door)
                if len(comp.items) >= comp.capacity:
                    raise SimError(f"door {door} is full ({comp.capacity} items)")
                comp.items.append(book.item_id)
                self._where[book.item_id] = door

    # ----------------------------------------------------------------- patrons and staff

    def take(self, door: int, item: str) -> dict[str, Any]:
        """A patron takes ``item`` out of the open compartment behind ``door``."""
        with self._lock:
            comp = self._open_door(door)
            book = self._book(item)
            where = self._where[item]
            if where is None:
                raise SimError(f"{item} is not in the bookcase (someone has it outside)")
            if where != door:
                raise SimError(f"{item} is behind door {where}, not door {door}")
            comp.items.remove(item)
            self._where[item] = None
            result = self._book_info(book)
        self._emit(f"door {door}: {item} taken out")
        return result

    def put(self, door: int, item: str) -> dict[str, Any]:
        """A patron puts ``item`` (held outside) into the open compartment behind ``door``."""
        with self._lock:
            comp = self._open_door(door)
            book = self._book(item)
            where = self._where[item]
            if where is not None:
                raise SimError(f"{item} is already behind door {where}")
            if len(comp.items) >= comp.capacity:
                raise SimError(f"door {door} is full ({comp.capacity} items)")
            comp.items.append(item)
            self._where[item] = door
            result = self._book_info(book)
        self._emit(f"door {door}: {item} put in")
        return result

    def put_junk(self, door: int) -> str:
        """Put a foreign tag (32 bytes that do not decode) into the open compartment; returns its UID in hex."""
        from kiosk.drivers.rfid.tag import decode_tag

        with self._lock:
            comp = self._open_door(door)
            if len(comp.items) >= comp.capacity:
                raise SimError(f"door {door} is full ({comp.capacity} items)")
            while True:
                uid = bytes([0xE0, 0x07]) + self._rng.randbytes(6)  # 07 = Texas Instruments: not ours
                data = self._rng.randbytes(TAG_BYTES)
                if uid in self._by_uid:
                    continue
                try:
                    decode_tag(data)
                except ValueError:
                    break
            item = JUNK_PREFIX + uid.hex().upper()
            book = Book(item_id=item, title="(foreign tag)", author="", uid=uid, tag_data=data)
            self._books[item] = book
            self._by_uid[uid] = item
            comp.items.append(item)
            self._where[item] = door
        self._emit(f"door {door}: foreign tag {uid.hex().upper()} put in")
        return uid.hex().upper()

    def close(self, door: int) -> dict[str, Any]:
        """Close ``door``; it is locked again once the unlock pulse is over."""
        with self._lock:
            comp = self._door(door)
            if not comp.door_open:
                raise SimError(f"door {door} is already closed")
            comp.door_open = False
            comp.forced = False
            result = self._door_info(comp)
        self._emit(f"door {door} closed")
        return result

    def force(self, door: int) -> dict[str, Any]:
        """Pry ``door`` open without an unlock command (a door_forced alarm for the daemon)."""
        with self._lock:
            comp = self._door(door)
            if comp.door_open:
                raise SimError(f"door {door} is already open")
            comp.door_open = True
            comp.forced = True
            comp.pops_at = None
            result = self._door_info(comp)
        self._emit(f"door {door} forced open")
        return result

    def set_flaky(self, item: str, flaky: bool = True) -> dict[str, Any]:
        """Make ``item``'s tag answer only every other inventory round (seen in the 1st, 3rd, … round)."""
        with self._lock:
            book = self._book(item)
            book.flaky = flaky
            self._flaky_rounds[item] = 0
            result = self._book_info(book)
        self._emit(f"{item} is {'flaky' if flaky else 'no longer flaky'}")
        return result

    # ----------------------------------------------------------------- the lock board's view

    @property
    def boards(self) -> frozenset[int]:
        return frozenset(board for board, _ in self._by_lock)

    def unlock(self, board: int, lock: int) -> int | None:
        """The board pulses ``lock``; returns the door wired to it (None: nothing wired there)."""
        with self._lock:
            now = self._advance()
            comp = self._by_lock.get((board, lock))
            if comp is None:
                door = None
            else:
                door = comp.door
                comp.unlocked_until = now + self.unlock_pulse_s
                if not comp.door_open and comp.pops_at is None:
                    comp.pops_at = now + self.pop_delay_s
        if door is None:
            self._emit(f"board {board} lock {lock} pulsed (no door wired to it)")
        else:
            self._emit(f"door {door} unlocked (board {board} lock {lock})")
        return door

    def board_state(self, board: int) -> tuple[int, int]:
        """Logical ``(unlocked, open)`` bit masks of ``board``: bit i is lock i + 1."""
        with self._lock:
            self._advance()
            unlocked = opened = 0
            for (b, lock), comp in self._by_lock.items():
                if b != board:
                    continue
                if not comp.locked:
                    unlocked |= 1 << (lock - 1)
                if comp.door_open:
                    opened |= 1 << (lock - 1)
            return unlocked, opened

    # ----------------------------------------------------------------- the RFID readers' view

    @property
    def readers(self) -> dict[int, int]:
        """Reader COM-ADR -> door number."""
        return {reader: comp.door for reader, comp in self._by_reader.items()}

    def inventory_round(self, reader: int) -> list[Book]:
        """One inventory round of ``reader``: the tags in its field that answer this round."""
        with self._lock:
            comp = self._by_reader[reader]
            comp.rounds += 1
            answering = []
            for item in comp.items:
                book = self._books[item]
                if book.flaky:
                    rounds = self._flaky_rounds.get(item, 0)
                    self._flaky_rounds[item] = rounds + 1
                    if rounds % 2:
                        continue
                answering.append(book)
            self._last_seen[reader] = {book.uid for book in answering}
            return answering

    def readable(self, reader: int, uid: bytes) -> Book | None:
        """The tag ``uid`` if it is in ``reader``'s field and answers (a flaky tag: if seen last round)."""
        with self._lock:
            item = self._by_uid.get(uid)
            comp = self._by_reader[reader]
            if item is None or self._where[item] != comp.door:
                return None
            book = self._books[item]
            if book.flaky and uid not in self._last_seen.get(reader, set()):
                return None
            return book

    # ----------------------------------------------------------------- inspection

    def book(self, item: str) -> Book:
        with self._lock:
            return self._book(item)

    def items_behind(self, door: int) -> list[str]:
        with self._lock:
            return list(self._door(door).items)

    def door_state(self, door: int) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return self._door_info(self._door(door))

    def status(self) -> dict[str, Any]:
        """Everything a tester wants to see, JSON-able."""
        with self._lock:
            self._advance()
            return {
                **self.info,
                "doors": [self._door_info(comp, items=True) for comp in self._doors.values()],
                "outside": [item for item, where in self._where.items() if where is None],
                "flaky": [item for item, book in self._books.items() if book.flaky],
                "books": len(self._books),
            }

    # ----------------------------------------------------------------- internals

    def advance(self) -> None:
        """Apply due timers (door pops, lock re-latches) now."""
        with self._lock:
            self._advance()

    def _advance(self) -> float:
        now = self._clock()
        popped = []
        for comp in self._doors.values():
            if comp.pops_at is not None and now >= comp.pops_at:
                comp.pops_at = None
                if not comp.door_open:
                    comp.door_open = True
                    popped.append(comp.door)
            if comp.unlocked_until is not None and now >= comp.unlocked_until:
                comp.unlocked_until = None
        for door in popped:
            self._emit(f"door {door} popped open")
        return now

    def _door(self, door: int) -> Compartment:
        try:
            return self._doors[door]
        except KeyError:
            known = ", ".join(str(d) for d in self._doors)
            raise SimError(f"no door {door} in this bookcase (doors: {known})") from None

    def _open_door(self, door: int) -> Compartment:
        self._advance()
        comp = self._door(door)
        if comp.door_open:
            return comp
        if comp.pops_at is not None:
            raise SimError(f"door {door} is unlocked but has not popped open yet "
                           f"({self.pop_delay_s * 1000:.0f} ms after the unlock)")
        raise SimError(f"door {door} is closed — unlock it first")

    def _book(self, item: str) -> Book:
        try:
            return self._books[item]
        except KeyError:
            raise SimError(f"no item {item!r} in this world (demo item ids look like MH20200001)") from None

    def _book_info(self, book: Book) -> dict[str, Any]:
        return {"item": book.item_id, "title": book.title, "author": book.author, "uid": book.uid.hex().upper(),
                "door": self._where[book.item_id], "reversed_blocks": book.reversed_blocks, "flaky": book.flaky}

    def _door_info(self, comp: Compartment, items: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "door": comp.door, "board": comp.board, "lock": comp.lock, "reader": comp.reader,
            "capacity": comp.capacity, "open": comp.door_open, "locked": comp.locked,
            "popping": comp.pops_at is not None, "forced": comp.forced, "count": len(comp.items),
            "rounds": comp.rounds,
        }
        if items:
            info["items"] = list(comp.items)
        return info

    def _emit(self, message: str) -> None:
        LOGGER.info("world: %s", message)
        if self.on_event is not None:
            self.on_event(message)
