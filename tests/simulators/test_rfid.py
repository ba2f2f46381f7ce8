"""The simulated FEIG reader bus over a real pty, spoken to with the driver's own codec."""

from __future__ import annotations

from pathlib import Path

import pytest
import serial

from kiosk.config import load_config
from kiosk.drivers.rfid import codec
from kiosk.drivers.rfid.codec import (
    CMD_ISO_HOST,
    INVENTORY_MODE_MORE,
    MAX_TAGS_PER_FRAME,
    STATUS_MORE_DATA,
    STATUS_NO_TRANSPONDER,
    STATUS_OK,
    InventoryRequest,
    InventoryResponse,
    RawFrame,
    ReadBlocksRequest,
    ReadBlocksResponse,
)
from kiosk.drivers.rfid.tag import decode_tag
from tests.simulators.helpers import read_frame, read_quiet, write_config


def rfid_port(sim, open_port) -> serial.Serial:
    return open_port(sim.paths["rfid"], 38400, parity=serial.PARITY_EVEN)


def ask(port: serial.Serial, request) -> RawFrame:
    port.write(request.to_bytes())
    frame = read_frame(port, codec.decode)
    assert frame is not None, f"no answer to {request}"
    return frame


def inventory(port: serial.Serial, reader: int) -> list[InventoryResponse]:
    """One inventory round, with paging: the responses in order."""
    responses = [InventoryResponse.from_frame(ask(port, InventoryRequest(reader)))]
    while responses[-1].status == STATUS_MORE_DATA:
        responses.append(InventoryResponse.from_frame(ask(port, InventoryRequest(reader, INVENTORY_MODE_MORE))))
    return responses


def uids(responses: list[InventoryResponse]) -> list[bytes]:
    return [tag.uid for r in responses for tag in r.tags]


def test_inventory_lists_the_compartment(make_sim, open_port) -> None:
    sim = make_sim(air_ms=1)
    port = rfid_port(sim, open_port)
    (response,) = inventory(port, 2)
    assert response.address == 2 and response.status == STATUS_OK
    assert uids([response]) == [sim.world.book(i).uid for i in sim.world.items_behind(2)]
    assert all(tag.tr_type == 0x03 and tag.dsfid == 0 for tag in response.tags)


def test_empty_compartment_answers_no_transponder(make_sim, open_port) -> None:
    sim = make_sim(empty=True)
    port = rfid_port(sim, open_port)
    assert inventory(port, 1) == [InventoryResponse(1, STATUS_NO_TRANSPONDER)]
    assert ask(port, InventoryRequest(1, INVENTORY_MODE_MORE)) == InventoryResponse(1, STATUS_NO_TRANSPONDER).to_frame()


def test_reader_not_on_the_bus_is_silent(make_sim, open_port) -> None:
    sim = make_sim()
    port = rfid_port(sim, open_port)
    port.write(InventoryRequest(9).to_bytes())
    assert read_quiet(port) == b""


def test_inventory_pages_more_than_24_tags(tmp_path: Path, make_sim, open_port) -> None:
    sim = make_sim(load_config(write_config(tmp_path, doors=2)), books_per_door=60, air_ms=0.5)
    port = rfid_port(sim, open_port)
    responses = inventory(port, 1)
    assert [r.status for r in responses] == [STATUS_MORE_DATA, STATUS_MORE_DATA, STATUS_OK]
    assert [len(r.tags) for r in responses] == [MAX_TAGS_PER_FRAME, MAX_TAGS_PER_FRAME, 12]
    assert uids(responses) == [sim.world.book(i).uid for i in sim.world.items_behind(1)]
    assert sim.world.door_state(1)["rounds"] == 1, "paging fetches the same round"
    stats = sim.status()["stats"]["rfid"]
    assert stats["air_time_s"] == pytest.approx(60 * 0.0005, rel=1e-3), "air time once per round"
    assert stats["frames_in"] == stats["frames_out"] == 3
    assert stats["byte_time_s"] == pytest.approx(stats["bytes_out"] * 11 / 38400, rel=1e-3)


def test_air_time_per_tag_and_round(make_sim, open_port) -> None:
    sim = make_sim(air_ms=8)
    port = rfid_port(sim, open_port)
    inventory(port, 1)
    inventory(port, 2)
    assert sim.status()["stats"]["rfid"]["air_time_s"] == pytest.approx(10 * 0.008, rel=1e-3)


def test_read_blocks_returns_the_tag_memory(make_sim, open_port) -> None:
    sim = make_sim(books_per_door=60)
    port = rfid_port(sim, open_port)
    items = sim.world.items_behind(1)
    plain = next(i for i in items if not sim.world.book(i).reversed_blocks)
    backwards = next(i for i in items if sim.world.book(i).reversed_blocks)
    for item, reversed_blocks in ((plain, False), (backwards, True)):
        uid = sim.world.book(item).uid
        response = ReadBlocksResponse.from_frame(ask(port, ReadBlocksRequest(1, uid, 0, 8)))
        assert response.status == STATUS_OK and response.block_size == 4
        assert all(sec == 0 for sec, _ in response.blocks)
        tag, was_reversed = decode_tag(response.data())
        assert (tag.item_id, was_reversed) == (item, reversed_blocks)
    part = ReadBlocksResponse.from_frame(ask(port, ReadBlocksRequest(1, sim.world.book(plain).uid, 2, 3)))
    assert part.data() == sim.world.book(plain).tag_data[8:20]


def test_read_blocks_of_a_tag_not_in_the_field(make_sim, open_port) -> None:
    sim = make_sim()
    port = rfid_port(sim, open_port)
    elsewhere = sim.world.book(sim.world.items_behind(2)[0]).uid
    for uid in (elsewhere, bytes.fromhex("E004000000000000")):
        frame = ask(port, ReadBlocksRequest(1, uid, 0, 8))
        assert ReadBlocksResponse.from_frame(frame) == ReadBlocksResponse(1, STATUS_NO_TRANSPONDER)


def test_read_beyond_the_tag_is_an_iso_error(make_sim, open_port) -> None:
    sim = make_sim()
    port = rfid_port(sim, open_port)
    uid = sim.world.book("MH20200001").uid
    assert ask(port, ReadBlocksRequest(1, uid, 6, 4)).payload[0] == 0x95


def test_junk_tag_is_inventoried_and_read_but_does_not_decode(make_sim, open_port) -> None:
    sim = make_sim()
    port = rfid_port(sim, open_port)
    sim.force(3)
    uid = bytes.fromhex(sim.put_junk(3))
    assert uid in uids(inventory(port, 3))
    response = ReadBlocksResponse.from_frame(ask(port, ReadBlocksRequest(3, uid, 0, 8)))
    with pytest.raises(ValueError):
        decode_tag(response.data())


def test_unknown_command_is_refused(make_sim, open_port) -> None:
    sim = make_sim()
    port = rfid_port(sim, open_port)
    frame = ask(port, RawFrame(1, 0x65))
    assert frame.command == 0x65 and frame.payload == b"\x80"
    frame = ask(port, RawFrame(1, CMD_ISO_HOST, b"\x24\x00"))
    assert frame.payload == b"\x80"


def test_flaky_tag_alternates_over_the_wire(make_sim, open_port) -> None:
    sim = make_sim(air_ms=0)
    port = rfid_port(sim, open_port)
    sim.flaky("MH20200003")
    uid = sim.world.book("MH20200003").uid
    assert [uid in uids(inventory(port, 1)) for _ in range(4)] == [True, False, True, False]


def test_misses_are_seeded(tmp_path: Path, open_port) -> None:
    from simulators.bookcase import SimulatedBookcase

    cfg = load_config(write_config(tmp_path))
    rounds = []
    for _ in range(2):
        with SimulatedBookcase(cfg, tmp_path / "sim", seed=7, miss=0.3, air_ms=0, books_per_door=20) as sim:
            port = rfid_port(sim, open_port)
            rounds.append([len(uids(inventory(port, 1))) for _ in range(5)])
            port.close()
    assert rounds[0] == rounds[1]
    assert min(rounds[0]) < 20


def test_miss_everything(make_sim, open_port) -> None:
    sim = make_sim(miss=1.0)
    port = rfid_port(sim, open_port)
    assert inventory(port, 1) == [InventoryResponse(1, STATUS_NO_TRANSPONDER)]
