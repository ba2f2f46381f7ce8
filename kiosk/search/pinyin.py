"""Pinyin keys of a title or an author: what a patron types on the screen's keyboard to find it.

A text is cut into units: each Chinese character is one syllable, read by pypinyin phrase by phrase (so
重庆 is chong qing and 银行 yin hang), tone-less; a run of digits ("1978") and a run of Latin letters ("dk",
"harry") are one unit each; punctuation and spaces only separate. Each unit has a full form ("gao") and an
initial ("g"; digits and Latin words keep their full form), so 《高考1978》 is found as "gk1978", "gaokao1978"
or "gaok". ``suffixes`` gives the same forms from every unit on, so "lm" finds 《红楼梦》 as well (a weaker
match than from the title's start).

pypinyin is loaded with the part of its phrase dictionary that matters without tones (kiosk.search.phrases):
12 MB instead of 55 MB. Authors' surnames use their surname readings (曾 zeng, 单 shan).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import threading
import unicodedata
from dataclasses import dataclass

from kiosk.search.phrases import PHRASES_FILE, toneless

LOGGER = logging.getLogger(__name__)

# Characters whose reading as a surname differs from their everyday reading (a surname comes first).
SURNAMES = {"曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "朴": "piao", "查": "zha",
            "盖": "ge", "乐": "yue", "尉": "yu", "覃": "qin", "缪": "miao", "翟": "zhai", "瞿": "qu",
            "柏": "bai", "种": "chong", "长孙": "zhangsun", "万俟": "moqi", "尉迟": "yuchi", "便": "pian",
            "繁": "po", "召": "shao", "员": "yun", "秘": "bi", "句": "gou", "任": "ren", "华": "hua", "薄": "bo"}
# Words after an author's name that say what they did: not part of the name a patron types.
ROLES = ("口述", "撰写", "主编", "编著", "编绘", "编写", "整理", "改编", "原著", "著", "编", "译", "绘", "文", "图",
         "等", "撰", "选编", "校注", "注")
AUTHOR_SPLIT = re.compile(r"[;；,，、/／]|\s{2,}|\band\b")
# People and places in titles whose reading pypinyin's dictionary lacks (a surname or a place read its own way).
NAMES = {"闵行": [["mǐn"], ["háng"]], "曾国藩": [["zēng"], ["guó"], ["fān"]], "单田芳": [["shàn"], ["tián"], ["fāng"]],
         "解缙": [["xiè"], ["jìn"]], "乐毅": [["yuè"], ["yì"]], "万俟": [["mò"], ["qí"]]}
UNIT = re.compile(r"[a-z]+|[0-9]+|[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f〇]+")
_LOCK = threading.Lock()
WORDS_KEPT = 20_000        # readings of words and characters kept (a few MB; the common characters are 3,500)


@dataclass(frozen=True)
class Keys:
    """The units of a text: (full, initial) each."""
    full: tuple[str, ...]
    initials: tuple[str, ...]

    def head(self) -> tuple[str, str]:
        """The whole text's full and initials forms: "gaokao1978", "gk1978"."""
        return "".join(self.full), "".join(self.initials)

    def suffixes(self) -> list[str]:
        """Both forms from the second unit on, and every Latin word and digit run alone: "kao1978", "k1978"."""
        out: list[str] = []
        for i in range(1, len(self.full)):
            out += ["".join(self.full[i:]), "".join(self.initials[i:])]
        return out


@functools.cache
def _pypinyin():
    """pypinyin with our phrase subset, imported once (PYPINYIN_NO_PHRASES only while it is imported)."""
    with _LOCK:
        saved = os.environ.get("PYPINYIN_NO_PHRASES")
        os.environ["PYPINYIN_NO_PHRASES"] = "1"
        try:
            import pypinyin
        finally:
            if saved is None:
                os.environ.pop("PYPINYIN_NO_PHRASES", None)
            else:
                os.environ["PYPINYIN_NO_PHRASES"] = saved
        pypinyin.load_phrases_dict({**json.loads(PHRASES_FILE.read_text(encoding="utf-8")), **NAMES})
        return pypinyin


def normalise(text: str) -> str:
    """Full-width letters and digits to plain ones, lower case: the form keys and queries are made of."""
    return unicodedata.normalize("NFKC", text).lower()


def syllables(hanzi: str) -> list[str]:
    """Tone-less syllables of a run of Chinese characters, one per character.

    pypinyin cuts the run into words (its phrases, else single characters) and reads each; the reading of a word
    is kept (``_word``), so a title made of words read before costs only the cutting: a holdings message of 500
    titles never seen before is read in a fifth of the time. The same words, read the same: pypinyin's cut of a
    word it cut out is that word again."""
    _pypinyin()
    from pypinyin.seg.simpleseg import seg
    out: list[str] = []
    for word in seg(hanzi):
        out += _word(word)
    return out


@functools.lru_cache(maxsize=WORDS_KEPT)
def _word(word: str) -> tuple[str, ...]:
    py = _pypinyin()
    read = py.lazy_pinyin(word, style=py.Style.NORMAL, errors=lambda chars: ["" for _ in chars])
    return tuple(toneless(s) for s in read)


def keys(text: str, *, person: bool = False) -> Keys:
    """The units of ``text`` (a title, or with ``person`` a name whose first character is a surname)."""
    full: list[str] = []
    initials: list[str] = []
    text = normalise(text)
    if person:
        for surname in sorted((s for s in SURNAMES if text.startswith(s)), key=len, reverse=True)[:1]:
            full.append(SURNAMES[surname])
            initials.append(SURNAMES[surname][0] if len(surname) == 1 else
                            "".join(s[0] for s in syllables(surname)))
            text = text[len(surname):]
    for run in UNIT.findall(text):
        if run[0].isascii():
            full.append(run)
            initials.append(run)
            continue
        for s in syllables(run):
            if s:
                full.append(s)
                initials.append(s[0])
    return Keys(tuple(full), tuple(initials))


def author_names(author: str) -> list[str]:
    """"樊锦诗 口述；顾春芳 撰写" -> ["樊锦诗", "顾春芳"]: the names in an author statement, roles dropped."""
    names = []
    for part in AUTHOR_SPLIT.split(author or ""):
        part = part.strip()
        for role in ROLES:
            if part.endswith(role) and len(part) > len(role):
                part = part[:-len(role)].strip()
                break
        part = re.sub(r"^[\[（(【〔][^\]）)】〕]*[\]）)】〕]\s*", "", part)     # "[英] 作者": the nationality
        if part:
            names.append(part)
    return names


def query_form(text: str) -> str:
    """What the patron typed, as keys are written: lower-case letters and digits only."""
    return "".join(ch for ch in normalise(text) if ch.isascii() and ch.isalnum())
