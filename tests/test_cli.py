"""The operator tools of the kiosk command."""

from __future__ import annotations

import json

from kiosk.cli import main
from kiosk.drivers.rfid.tag import decode_tag


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
