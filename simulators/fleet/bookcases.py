"""Simulated bookcases of one fleet: configs pointing at a broker, and worlds whose books do not collide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.demodata import DEMO_COUNTRY, DEMO_ISIL, MAX_DEMO_ITEMS, demo_books, uid_for
from kiosk.drivers.rfid.tag import LibraryTag
from simulators.world import DOOR_POP_DELAY_MS, Book, Compartment, World

LIBRARY = "minhang"
SECRET = "fleet-demo-secret-0123456789"     # demo and tests only: every real library has its own


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)   # a JSON string is a valid TOML basic string


def write_fleet_config(folder: Path, bookcase_id: str, name: str, mqtt: dict[str, Any] | None, *, doors: int = 3,
                       capacity: int = 80, session: dict[str, Any] | None = None, secret: str = SECRET,
                       place: tuple[float, float, str] | None = None) -> Path:
    """A bookcase config in ``folder/bookcase.toml``: ``doors`` doors on board 0, ports in ``folder/sim``,
    data in ``folder/data``, demo catalogue and patrons, and an ``[mqtt]`` section from ``mqtt`` (None: none).
    ``secret`` is the library's patron-key secret: one per library, the same at every bookcase of its fleet.
    ``place``: (latitude, longitude, address) of the bookcase, for the Find page's distances (None: not given)."""
    timing = {"choose_door_timeout_s": 30, "door_open_timeout_s": 20, "door_open_prompt_s": 30,
              "door_open_alarm_s": 90, "receipt_s": 1, "inventory_max_rounds": 6, "rescan_interval_s": 0.5}
    timing.update(session or {})
    lines = [f"# Fleet bookcase {bookcase_id}, written by simulators.fleet.",
             f"library = {toml_value(LIBRARY)}", f"secret = {toml_value(secret)}", 'data_dir = "data"',
             'intent_socket = "data/intent.sock"',
             "[bookcase]", f"id = {toml_value(bookcase_id)}", f"name = {toml_value(name)}",
             *([f"latitude = {place[0]!r}", f"longitude = {place[1]!r}", f"address = {toml_value(place[2])}"]
               if place else []),
             "[lockboard]", 'port = "sim/lockboard"', "poll_interval_ms = 50",
             "[rfid]", 'port = "sim/rfid"', "timeout_ms = 3000", "retries = 1",
             "[scanner]", 'port = "sim/scanner"',
             "[policy]", "default_limit = 15", "[policy.classes]", "adult = 15", "branch = 10", "child = 10",
             "[session]", *(f"{k} = {toml_value(v)}" for k, v in timing.items()),
             "[demo]", "seed = true"]
    if mqtt is not None:
        lines += ["[mqtt]", *(f"{k} = {toml_value(v)}" for k, v in mqtt.items())]
    for n in range(1, doors + 1):
        lines += ["[[doors]]", f"number = {n}", "board = 0", f"lock = {n}", f"reader = {n}", f"capacity = {capacity}"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bookcase.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fleet_world(cfg: Config, first_item: int, books_per_door: int, *, seed: int = 0,
                pop_delay_ms: float = DOOR_POP_DELAY_MS) -> World:
    """A world for ``cfg`` stocked with demo items ``first_item``, ``first_item + 1``, … so that two bookcases
    of the fleet never hold the same barcode (the demo catalogue every bookcase seeds covers them all)."""
    total = books_per_door * len(cfg.doors)
    if first_item < 1 or first_item - 1 + total > MAX_DEMO_ITEMS:
        raise ValueError(f"items {first_item}..{first_item + total - 1} are outside the demo catalogue")
    pool = demo_books([1], per_door=first_item - 1 + total)[first_item - 1:]
    comps = [Compartment(door=d.number, board=d.board, lock=d.lock, reader=d.reader, capacity=d.capacity)
             for d in cfg.doors]
    world = World(comps, unlock_pulse_ms=cfg.lockboard.unlock_pulse_ms, pop_delay_ms=pop_delay_ms, seed=seed,
                  info={"library": cfg.library, "bookcase": cfg.bookcase.id, "name": cfg.bookcase.name})
    for i, demo in enumerate(pool):
        world.add_book(make_book(demo.item_id, demo.title, demo.author),
                       door=cfg.doors[i // books_per_door].number)
    return world


def make_book(item_id: str, title: str, author: str) -> Book:
    tag = LibraryTag(item_id, country=DEMO_COUNTRY, isil=DEMO_ISIL)
    return Book(item_id=item_id, title=title, author=author, uid=uid_for(item_id), tag_data=tag.encode())


def carry(item: str, source: World, destination: World) -> None:
    """A patron walks off with ``item`` (taken out of ``source``) and arrives at ``destination`` holding it."""
    book = source.book(item)
    if item in (i for d in source.status()["doors"] for i in d["items"]):
        raise ValueError(f"{item} is still in the bookcase it came from")
    destination.add_book(Book(item_id=book.item_id, title=book.title, author=book.author, uid=book.uid,
                              tag_data=book.tag_data, reversed_blocks=book.reversed_blocks))
