"""The Chinese Library Classification (中国图书馆分类法, CLC) classes a patron browses by, and children's books.

A class mark such as "I247.5" or "TP312" starts with the class letter; computing (TP) is shown on its own
because patrons look for it by name. Children's books: Chinese children's literature (I287), foreign
children's literature (I[1-7]xx.8, e.g. I561.8), and children's general reading (Z228).
"""

from __future__ import annotations

import logging
import re

LOGGER = logging.getLogger(__name__)

# Browse classes: code -> (Chinese, English). Two-letter codes come before their letter's.
CLASSES: dict[str, tuple[str, str]] = {
    "A": ("马列主义", "Marxism"),
    "B": ("哲学宗教", "Philosophy"),
    "C": ("社会科学", "Society"),
    "D": ("政治法律", "Law"),
    "E": ("军事", "Military"),
    "F": ("经济", "Economics"),
    "G": ("文化教育", "Education"),
    "H": ("语言文字", "Languages"),
    "I": ("文学", "Literature"),
    "J": ("艺术", "Arts"),
    "K": ("历史地理", "History"),
    "N": ("自然科学", "Science"),
    "O": ("数理化", "Maths"),
    "P": ("天文地球", "Earth"),
    "Q": ("生物", "Biology"),
    "R": ("医药卫生", "Health"),
    "S": ("农业", "Agriculture"),
    "TP": ("计算机", "Computing"),
    "T": ("工业技术", "Technology"),
    "U": ("交通运输", "Transport"),
    "V": ("航空航天", "Aerospace"),
    "X": ("环境科学", "Environment"),
    "Z": ("综合图书", "General"),
}
CHILDREN = re.compile(r"^(I287|Z228|I[1-7]\d\d\.8)")


def class_of(clc: str) -> str | None:
    """The browse class of a class mark ("TP312" -> "TP", "I247.5" -> "I"), None if it has none."""
    clc = (clc or "").strip().upper()
    if clc[:2] in CLASSES:
        return clc[:2]
    return clc[:1] if clc[:1] in CLASSES else None


def class_name(code: str, lang: str) -> str:
    zh, en = CLASSES.get(code, (code, code))
    return zh if lang == "zh" else en


def is_children(clc: str) -> bool:
    return bool(CHILDREN.match((clc or "").strip().upper()))
