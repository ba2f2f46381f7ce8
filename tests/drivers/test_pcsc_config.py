"""The [pcsc] config table: off by default, on in the demo (vpcd's reader), mistakes named by key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kiosk.config import ConfigError, PcscConfig, load_config

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo.toml"


def _config(tmp_path: Path, pcsc: str | None) -> Path:
    base = re.sub(r"\n\[pcsc\]\n(?:[^\[\n][^\n]*\n|\n)*", "\n", DEMO.read_text(encoding="utf-8"))
    path = tmp_path / "bookcase.toml"
    path.write_text(base + (f"\n[pcsc]\n{pcsc}\n" if pcsc is not None else ""), encoding="utf-8")
    return path


def test_demo_reads_cards_on_the_vpcd_reader() -> None:
    cfg = load_config(DEMO)
    assert cfg.pcsc == PcscConfig(enabled=True, reader="Virtual PCD 00 00", debounce_ms=1500)


def test_no_pcsc_table_means_no_card_reader(tmp_path: Path) -> None:
    assert load_config(_config(tmp_path, None)).pcsc == PcscConfig(enabled=False, reader="", debounce_ms=1500)


@pytest.mark.parametrize("text, expected", [
    ("enabled = true", PcscConfig(True, "", 1500)),
    ('enabled = true\nreader = ""', PcscConfig(True, "", 1500)),        # "": the first reader
    ('enabled = true\nreader = "ACS ACR122"\ndebounce_ms = 0', PcscConfig(True, "ACS ACR122", 0)),
])
def test_pcsc_values(tmp_path: Path, text: str, expected: PcscConfig) -> None:
    assert load_config(_config(tmp_path, text)).pcsc == expected


@pytest.mark.parametrize("text, key, words", [
    ('enabled = "yes"', "pcsc.enabled", "expected true or false"),
    ("reader = 3", "pcsc.reader", "expected a string"),
    ("debounce_ms = 20000", "pcsc.debounce_ms", "out of range"),
    ("debounce_ms = 1.5", "pcsc.debounce_ms", "expected an integer"),
    ("port = 35963", "pcsc.port", "unknown key (known: debounce_ms, enabled, reader)"),
])
def test_pcsc_mistakes_name_the_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == key and words in err.value.message and str(path) in str(err.value)
