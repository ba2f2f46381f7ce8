"""The world's rules: doors, locks and their timing, taking and putting, junk and flaky tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk.config import Config, load_config
from kiosk.drivers.rfid.tag import decode_tag
from simulators.errors import SimError
from simulators.world import World
from tests.simulators.helpers import write_config


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def world(cfg: Config, clock: FakeClock) -> World:
    return World.from_config(cfg, books_per_door=5, clock=clock)


def open_door(world: World, clock: FakeClock, door: int) -> None:
    comp = world.door_state(door)
    world.unlock(comp["board"], comp["lock"])
    clock.advance(250)


def test_from_config_stocks_demo_books_with_valid_tags(world: World, cfg: Config) -> None:
    status = world.status()
    assert [d["door"] for d in status["doors"]] == [d.number for d in cfg.doors]
    assert all(d["count"] == 5 and not d["open"] and d["locked"] for d in status["doors"])
    assert status["outside"] == [] and status["books"] == 20
    book = world.book("MH20200001")
    tag, was_reversed = decode_tag(book.tag_data)
    assert tag.item_id == "MH20200001" and tag.isil == "CN-310112"
    assert was_reversed == book.reversed_blocks
    json.dumps(status)


def test_some_demo_tags_store_blocks_reversed(cfg: Config) -> None:
    world = World.from_config(cfg, books_per_door=60)
    flags = [world.book(f"MH2020{i:04d}").reversed_blocks for i in range(1, 241)]
    assert 0 < sum(flags) < len(flags)


def test_empty_world_has_every_book_outside(cfg: Config) -> None:
    world = World.from_config(cfg, books_per_door=3, empty=True)
    status = world.status()
    assert all(d["count"] == 0 for d in status["doors"])
    assert len(status["outside"]) == 12


def test_too_many_books_for_a_door(cfg: Config) -> None:
    with pytest.raises(SimError, match="capacity 80"):
        World.from_config(cfg, books_per_door=81)


def test_take_from_a_closed_door_fails(world: World) -> None:
    with pytest.raises(SimError, match="door 1 is closed — unlock it first"):
        world.take(1, "MH20200001")
    with pytest.raises(SimError, match="door 1 is closed"):
        world.put(1, "MH20200001")


def test_unlock_pops_the_door_after_the_delay_and_relatches_after_the_pulse(world: World, clock: FakeClock) -> None:
    assert world.unlock(0, 2) == 2
    assert world.board_state(0) == (0b10, 0)
    with pytest.raises(SimError, match="not popped open yet"):
        world.take(2, "MH20200006")
    clock.advance(200)
    assert world.board_state(0) == (0b10, 0b10)
    clock.advance(300)
    assert world.board_state(0) == (0, 0b10), "the lock re-latches when the pulse ends; the door stays open"
    assert world.door_state(2)["open"] and world.door_state(2)["locked"]
    clock.advance(60_000)
    assert world.door_state(2)["open"], "an unlocked door stays open until closed"
    world.close(2)
    assert world.board_state(0) == (0, 0)
    with pytest.raises(SimError, match="already closed"):
        world.close(2)


def test_unlock_of_an_unwired_lock_does_nothing(world: World) -> None:
    assert world.unlock(0, 16) is None
    assert world.board_state(0)[1] == 0


def test_take_and_put_move_books(world: World, clock: FakeClock) -> None:
    open_door(world, clock, 1)
    taken = world.take(1, "MH20200001")
    assert taken["item"] == "MH20200001" and taken["door"] is None
    assert "MH20200001" not in world.items_behind(1)
    with pytest.raises(SimError, match="not in the bookcase"):
        world.take(1, "MH20200001")
    with pytest.raises(SimError, match="behind door 2, not door 1"):
        world.take(1, "MH20200006")
    with pytest.raises(SimError, match="already behind door 2"):
        world.put(1, "MH20200006")
    with pytest.raises(SimError, match="no item 'nope'"):
        world.take(1, "nope")
    with pytest.raises(SimError, match="no door 9"):
        world.take(9, "MH20200001")
    world.put(1, "MH20200001")
    assert world.items_behind(1)[-1] == "MH20200001"
    assert world.status()["outside"] == []


def test_a_full_compartment_refuses_more(tmp_path: Path, clock: FakeClock) -> None:
    cfg = load_config(write_config(tmp_path, capacity=1))
    world = World.from_config(cfg, books_per_door=1, empty=True, clock=clock)
    open_door(world, clock, 1)
    world.put(1, "MH20200001")
    with pytest.raises(SimError, match="door 1 is full"):
        world.put(1, "MH20200002")
    with pytest.raises(SimError, match="door 1 is full"):
        world.put_junk(1)


def test_forced_door(world: World) -> None:
    world.force(3)
    state = world.door_state(3)
    assert state["open"] and state["forced"] and state["locked"]
    assert world.board_state(0) == (0, 0b100)
    world.take(3, "MH20200011")
    with pytest.raises(SimError, match="already open"):
        world.force(3)
    world.close(3)
    assert not world.door_state(3)["forced"]


def test_junk_tag_does_not_decode_but_is_in_the_field(world: World, clock: FakeClock) -> None:
    open_door(world, clock, 4)
    uid_hex = world.put_junk(4)
    uid = bytes.fromhex(uid_hex)
    assert len(uid) == 8 and uid[0] == 0xE0
    book = world.readable(4, uid)
    assert book is not None
    with pytest.raises(ValueError):
        decode_tag(book.tag_data)
    assert uid in {b.uid for b in world.inventory_round(4)}


def test_flaky_tag_alternates_rounds_deterministically(world: World) -> None:
    world.set_flaky("MH20200002")
    uid = world.book("MH20200002").uid
    seen = [uid in {b.uid for b in world.inventory_round(1)} for _ in range(6)]
    assert seen == [True, False, True, False, True, False]
    assert world.inventory_round(1) and world.readable(1, uid) is not None
    world.inventory_round(1)
    assert world.readable(1, uid) is None, "not readable in a round where it does not answer"
    assert world.status()["flaky"] == ["MH20200002"]
    world.set_flaky("MH20200002", False)
    assert all(uid in {b.uid for b in world.inventory_round(1)} for _ in range(3))


def test_events_are_reported(cfg: Config, clock: FakeClock) -> None:
    events: list[str] = []
    world = World.from_config(cfg, books_per_door=2, clock=clock, on_event=events.append)
    world.unlock(0, 1)
    clock.advance(200)
    world.advance()
    world.take(1, "MH20200001")
    world.close(1)
    assert events == ["door 1 unlocked (board 0 lock 1)", "door 1 popped open", "door 1: MH20200001 taken out",
                      "door 1 closed"]
