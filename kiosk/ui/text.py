"""Line breaking for the screen: per character for Chinese (with punctuation rules), per word for English."""

from __future__ import annotations

import logging
from collections.abc import Callable

LOGGER = logging.getLogger(__name__)

# Chinese line-breaking rules (GB/T 15834 practice, as in Japanese kinsoku): closing punctuation never
# starts a line, opening punctuation never ends one.
NO_LINE_START = frozenset("，。、；：？！）》」』】〕〉〗’”…—·～%,.;:?!)]}>、ー")
NO_LINE_END = frozenset("（《「『【〔〈〖‘“([{<")
ELLIPSIS = "…"


def is_cjk(ch: str) -> bool:
    """A character that may break on either side (ideographs, kana, CJK and full-width punctuation)."""
    o = ord(ch)
    return (0x2E80 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFE30 <= o <= 0xFE4F
            or 0xFF00 <= o <= 0xFFEF or 0x20000 <= o <= 0x2FA1F or ch in "…—")


def tokens(text: str) -> list[str]:
    """Unbreakable units: a CJK character, a run of other characters (a word, "13:00", "e-card,"), or a space.

    Closing punctuation is glued to the unit before it and opening punctuation to the unit after it,
    so a break between two units always obeys the punctuation rules.
    """
    raw: list[str] = []
    word = ""
    for ch in text:
        if ch.isspace() or is_cjk(ch) or not ch.isascii() and (ch in NO_LINE_START or ch in NO_LINE_END):
            if word:
                raw.append(word)
                word = ""
            raw.append(" " if ch.isspace() else ch)
        else:
            word += ch
    if word:
        raw.append(word)
    units: list[str] = []
    glue_next = False
    for tok in raw:
        if tok == " ":
            units.append(tok)
            glue_next = False
            continue
        if units and units[-1] != " " and (glue_next or tok[0] in NO_LINE_START):
            units[-1] += tok
        else:
            units.append(tok)
        glue_next = tok[-1] in NO_LINE_END
    return units


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` (as ``measure`` says); "\\n" forces a break.

    A unit wider than a whole line (a very long word) is broken between characters as a last resort.
    """
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_wrap_paragraph(paragraph, width, measure))
    return lines


def _wrap_paragraph(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    lines: list[str] = []
    line = ""
    space = False
    for unit in tokens(text):
        if unit == " ":
            space = bool(line)
            continue
        candidate = line + (" " if space else "") + unit
        space = False
        if measure(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        if measure(unit) <= width:
            line = unit
            continue
        for ch in unit:                       # hard break inside an over-long unit
            if line and measure(line + ch) > width:
                lines.append(line)
                line = ""
            line += ch
    if line or not lines:
        lines.append(line)
    return lines


def ellipsize(line: str, width: float, measure: Callable[[str], float]) -> str:
    """``line`` shortened with "…" to fit ``width``."""
    if measure(line + ELLIPSIS) <= width:
        return line + ELLIPSIS
    while line and measure(line + ELLIPSIS) > width:
        line = line[:-1]
    return line.rstrip() + ELLIPSIS if line else ELLIPSIS
