"""The operator tools of the kiosk command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiosk import intents
from kiosk.cli import main
from kiosk.core.snapshot import Snapshot
from kiosk.drivers.rfid.tag import decode_tag
from tests.scenarios.harness import ADULT, Bookcase, wait_for


def test_tag_encode_then_decode(capsys):
    assert main(["tag", "encode", "--barcode", "MH20200007", "--isil", "CN-310112", "--country", "CN"]) == 0
    hex_ = capsys.readouterr().out.strip()
    tag, reversed_ = decode_tag(bytes.fromhex(hex_))
    assert (tag.item_id, tag.isil, tag.country, reversed_) == ("MH20200007", "CN-310112", "CN", False)
    assert main(["tag", "decode", hex_]) == 0
    decoded = json.loads(capsys.readouterr().out)
    assert decoded["item_id"] == "MH20200007" and decoded["usage"] == 1


def test_tag_decode_reversed_and_errors(capsys):
    main(["tag", "encode", "--barcode", "MH1", "--reversed"])
    hex_ = capsys.readouterr().out.strip()
    assert main(["tag", "decode", hex_]) == 0
    assert json.loads(capsys.readouterr().out)["reversed_blocks"] is True
    broken = hex_[:6] + ("0" if hex_[6] != "0" else "1") + hex_[7:]
    assert main(["tag", "decode", broken]) == 1
    assert "not a valid library tag" in capsys.readouterr().err
    assert main(["tag", "decode", "zz"]) == 2
    assert main(["tag", "encode", "--barcode", "X" * 17]) == 2
    assert "kiosk: tag encode" in capsys.readouterr().err


# --- issue 11 item 10: `kiosk intent` says what the intent did, from the state after it ---------------------


def _intent(capsys, config, *argv: str) -> tuple[int, dict, str]:
    code = main(["intent", "--config", str(config), *argv])
    out = capsys.readouterr()
    return code, json.loads(out.out) if out.out else {}, out.err


def test_intent_says_in_a_line_what_it_did_after_the_daemon_handled_it(tmp_path, capsys):
    case = Bookcase(tmp_path).start()
    try:
        # A door picked before the card: the state stays idle, and the line says the door is remembered.
        code, reply, err = _intent(capsys, case.config_path, "door", "2")
        assert (code, reply["handled"], reply["snapshot"]["state"]) == (0, True, "idle")
        assert err == "kiosk: door 2 chosen: it opens for the next card read (now idle, waiting for a patron)\n"
        assert reply["result"] == err[len("kiosk: "):-1]
        case.sim.scan(ADULT)
        wait_for(lambda: case.seen_open(2), 10, "door 2 to open for the card")
        code, reply, err = _intent(capsys, case.config_path, "status")
        assert code == 0 and err == "kiosk: now door 2 open for a patron\n"
        code, reply, err = _intent(capsys, case.config_path, "door", "2")
        assert code == 0 and err == "kiosk: door 2 was open already; now door 2 open for a patron\n"
        code, reply, err = _intent(capsys, case.config_path, "door", "3")
        assert code == 0 and err.startswith("kiosk: door 3 not opened: now door 2 open for a patron")
        code, reply, err = _intent(capsys, case.config_path, "door", "9")
        assert (code, reply) == (2, {}) and err == "kiosk: bookcase MH-TEST has no door 9 (its doors: 1, 2, 3)\n"
        case.sim.close(2)
        wait_for(lambda: case.settled_sessions(), 30, "the session")
        # A card, then the door: the answer is the state after the unlock, not the "choosing" before it.
        wait_for(lambda: case.app.snapshot.state == "idle", 30, "the receipt to time out")
        case.sim.scan(ADULT)
        wait_for(lambda: case.app.snapshot.state == "choosing", 10, "the card read")
        code, reply, err = _intent(capsys, case.config_path, "door", "3")
        assert (code, reply["snapshot"]["state"], reply["snapshot"]["door"]) == (0, "door_open", 3)
        assert err == "kiosk: door 3 unlocked; now door 3 open for a patron\n"
        wait_for(lambda: case.seen_open(3), 10, "door 3")
        case.sim.close(3)
        wait_for(lambda: len(case.settled_sessions()) == 2, 30, "the second session")
    finally:
        case.stop()


def test_an_intent_the_core_loop_has_not_reached_says_so(monkeypatch):
    """The barrier behind the intent times out (a core loop busy for seconds): the answer must not pass the state
    from before the intent off as its result."""
    monkeypatch.setattr(intents, "BARRIER_TIMEOUT_S", 0.05)
    posted: list = []
    server = intents.IntentServer(Path("unused.sock"), posted.append, lambda: Snapshot(state="choosing"))
    reply = server.answer(b'{"intent": "door", "door": 2}\n')
    assert reply["ok"] is True and reply["handled"] is False
    assert reply["result"] == ("sent, not handled yet (the bookcase is busy); the state shown is from before it: "
                               "now a patron is choosing a door")
    assert [type(e).__name__ for e in posted] == ["DoorChosen", "Barrier"]


@pytest.mark.parametrize("intent, before, after, line", [
    ({"intent": "door", "door": 2}, Snapshot(state="choosing", doors_in_service=(1, 3), doors_out_of_service=(2,)),
     Snapshot(state="choosing", doors_in_service=(1, 3), doors_out_of_service=(2,)),
     "door 2 is out of service; nothing done (now a patron is choosing a door)"),
    ({"intent": "door", "door": 2}, Snapshot(state="choosing", doors_in_service=(1, 2)),
     Snapshot(state="choosing", doors_in_service=(1, 2)),
     "door 2 is busy and did not open; the patron is still choosing (now a patron is choosing a door)"),
    ({"intent": "door", "door": 1}, Snapshot(state="choosing", doors_in_service=(1, 2)),
     Snapshot(state="door_open", door=1, kind="return", doors_in_service=(1, 2)),
     "door 1 unlocked; now door 1 open to return books"),
    ({"intent": "cancel"}, Snapshot(state="choosing"), Snapshot(state="idle"), "cancelled; now idle, waiting for a patron"),
    ({"intent": "cancel"}, Snapshot(state="scanning", door=3), Snapshot(state="scanning", door=3),
     "nothing to cancel; now counting the books behind door 3"),
    ({"intent": "status"}, Snapshot(state="refused", reason="blocked"), Snapshot(state="refused", reason="blocked"),
     "now a card was refused (blocked)"),
])
def test_the_one_line_result_tells_what_happened(intent, before, after, line):
    assert intents.result(intent, before, after) == line
