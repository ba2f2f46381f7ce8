"""The part of pypinyin's phrase dictionary that the search needs, and the tool that extracts it.

pypinyin (pinned in pyproject.toml) reads a title phrase by phrase, so that 重庆 is chong qing and 银行 yin
hang. Its whole phrase dictionary costs about 43 MB of memory in a running daemon; the search only needs
tone-less syllables, and for almost every phrase those are the characters' own default readings. This file
keeps the phrases that read differently without tones (about 3,500 of 47,000), plus any phrase whose reading
would otherwise change because a longer phrase is gone, so that pypinyin with this subset reads every phrase of
its dictionary exactly as it does with all of it (``check``).

``kiosk/search/phrases.json`` is generated; after upgrading pypinyin run::

    .venv/bin/python -m kiosk.search.phrases        # rewrites phrases.json, then checks it
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

LOGGER = logging.getLogger(__name__)

PHRASES_FILE = Path(__file__).resolve().parent / "phrases.json"


def toneless(syllable: str) -> str:
    """"hǎo" -> "hao", "lǜ" -> "lv": the way a patron types it on a keyboard without tones."""
    plain = "".join(c for c in unicodedata.normalize("NFD", syllable.replace("ü", "v"))
                    if not unicodedata.combining(c))
    return plain.lower()


def _full_readings() -> dict[str, list[str]]:
    """Every phrase of pypinyin's dictionary -> its tone-less syllables (in a process with the whole of it)."""
    code = ("import json, sys\n"
            "from pypinyin import lazy_pinyin, Style\n"
            "from pypinyin.constants import PHRASES_DICT\n"
            "json.dump({p: lazy_pinyin(p, style=Style.NORMAL) for p in PHRASES_DICT}, sys.stdout, ensure_ascii=False)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
    return json.loads(out.stdout)


def _subset_mismatches(subset: dict, truth: dict[str, list[str]]) -> list[str]:
    """Phrases that pypinyin with only ``subset`` reads differently from ``truth`` (in a fresh process)."""
    code = ("import json, sys\n"
            "from pypinyin import lazy_pinyin, Style, load_phrases_dict\n"
            "subset, truth = json.load(sys.stdin)\n"
            "load_phrases_dict(subset)\n"
            "json.dump([p for p, want in truth.items() if lazy_pinyin(p, style=Style.NORMAL) != want], sys.stdout)")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYPINYIN_")}, "PYPINYIN_NO_PHRASES": "1"}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env,
                         input=json.dumps([subset, truth], ensure_ascii=False).encode())
    return json.loads(out.stdout)


def generate(path: Path = PHRASES_FILE) -> int:
    """Write the subset to ``path``; returns how many phrases it holds."""
    from pypinyin import phrases_dict          # the data file itself: no conversion done here
    everything = phrases_dict.phrases_dict
    truth = _full_readings()
    from pypinyin import pinyin_dict
    default = {chr(code): toneless(readings.split(",")[0]) for code, readings in pinyin_dict.pinyin_dict.items()}
    subset = {p: everything[p] for p, want in truth.items() if [default.get(c, c) for c in p] != want}
    for _ in range(10):                        # a phrase read through a shorter one now: keep it too
        wrong = [p for p in _subset_mismatches(subset, truth) if p not in subset]
        if not wrong:
            break
        subset.update({p: everything[p] for p in wrong})
    text = json.dumps(dict(sorted(subset.items())), ensure_ascii=False, separators=(",", ":"))
    path.write_text(text + "\n", encoding="utf-8")
    return len(subset)


def check(path: Path = PHRASES_FILE) -> list[str]:
    """Phrases of pypinyin's dictionary that the subset in ``path`` reads differently (empty: none)."""
    subset = json.loads(path.read_text(encoding="utf-8"))
    return _subset_mismatches(subset, _full_readings())


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n = generate()
    wrong = check()
    LOGGER.info("%s: %d phrases; %d of pypinyin's phrases read differently with it", PHRASES_FILE, n, len(wrong))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
