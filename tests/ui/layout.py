"""The check every rendered frame must pass: glyphs, boxes, overlaps, type size, line breaks and touch targets."""

from __future__ import annotations

import re

from kiosk.ui.loop import KioskUI
from kiosk.ui.samples import BOOKCASE_NAME, Sample
from kiosk.ui.screens.promo import RECOMMENDED_TITLES
from kiosk.ui.text import tokens
from kiosk.ui.theme import MIN_TARGET_PX

WORD = re.compile(r"[A-Za-z]{2,}")
# English words a Chinese screen may show: the language button, and units and names that have no Chinese.
ZH_ASCII_WORDS = {"English", "RFID", "MB"}


def legal_breaks(text: str) -> set[int]:
    """Where a line may end, counted in characters of ``text`` without its whitespace."""
    ends, n = set(), 0
    for unit in tokens(" ".join(text.split("\n"))):
        if unit != " ":
            n += len(unit)
            ends.add(n)
    return ends


def may_cut(sample: Sample) -> set[str]:
    """Texts a screen cuts with "…" by design: the drivers' free-form messages on the diagnostics screen."""
    d = sample.snap.diagnostics
    return {message for _, _, message in d.devices} if d is not None else set()


def check_frame(ui: KioskUI, fonts, where: str, *, cut_ok: set[str] = frozenset()) -> None:
    """Assert that the frame ``ui`` drew is one a patron can read and touch."""
    assert ui.errors == 0, f"{where}: the screen failed to draw"
    texts = [t for t in ui.painter.texts if t.lines != ("",)]
    assert texts, f"{where}: nothing drawn"
    screen = ui.surface.get_rect()
    floor = ui.painter.L.min_text
    for t in texts:
        for line in t.lines:
            missing = fonts.missing(line, t.bold)
            assert not missing, f"{where}: no glyph for {sorted(missing)} in {line!r}"
        assert t.box.contains(t.rect), f"{where}: {t.text!r} drawn at {t.rect} outside its box {t.box}"
        assert screen.contains(t.rect), f"{where}: {t.text!r} off the screen at {t.rect}"
        assert t.size >= floor, f"{where}: {t.text!r} at {t.size} px, smaller than the {floor} px floor"
        if t.truncated:
            assert t.text in cut_ok, f"{where}: {t.text!r} had to be cut to fit {t.box} at {t.size} px"
            continue
        flat = "".join(t.text.split())
        assert "".join(t.lines).replace(" ", "") == flat, f"{where}: {t.text!r} lost characters: {t.lines}"
        ends, n = legal_breaks(t.text), 0
        for line in t.lines[:-1]:
            n += len(line.replace(" ", ""))
            assert n in ends, f"{where}: {t.text!r} broken inside a word: {t.lines}"
    for i, a in enumerate(texts):
        for b in texts[i + 1:]:
            assert not a.rect.colliderect(b.rect), f"{where}: {a.text!r} and {b.text!r} overlap"
    targets = [t for t in ui.painter.targets if t.key != "background"]
    for t in targets:
        assert t.rect.width >= MIN_TARGET_PX and t.rect.height >= MIN_TARGET_PX, \
            f"{where}: target {t.key} is only {t.rect.size}"
        assert screen.contains(t.rect), f"{where}: target {t.key} at {t.rect} is off the screen"
        for text in texts:
            assert not text.rect.colliderect(t.rect) or t.rect.contains(text.rect), \
                f"{where}: {text.text!r} runs over the edge of the button {t.key}"
    for i, a in enumerate(targets):
        for b in targets[i + 1:]:
            assert not a.rect.colliderect(b.rect), f"{where}: targets {a.key} and {b.key} overlap"


def data_words(sample: Sample) -> set[str]:
    """Latin words in the sample's own data (titles, names, device messages): not the screen's words."""
    s = sample.snap
    texts = [BOOKCASE_NAME, *RECOMMENDED_TITLES]
    if s.receipt is not None:
        texts += [str(v) for row in s.receipt.borrowed + s.receipt.returned for v in row]
    if sample.found is not None:
        texts += [sample.found.query] + [str(v) for row in sample.found.rows for v in row.values()]
    if s.diagnostics is not None:
        d = s.diagnostics
        texts += [d.bookcase_id, d.bookcase_name, d.version, d.last_sync or ""]
        texts += [message for _, _, message in d.devices]
    return {w for text in texts for w in WORD.findall(text)}


def english_on_chinese_screen(ui: KioskUI, sample: Sample) -> set[str]:
    """Latin words drawn on a Chinese screen that are neither data nor allowed (a leak of English)."""
    allowed = ZH_ASCII_WORDS | data_words(sample)
    return {w for t in ui.painter.texts for w in WORD.findall(t.text)} - allowed
