"""The screen's message catalogue: one TOML file per language in kiosk/ui/locale; refusals from core.policy."""

from __future__ import annotations

import functools
import logging
import string
import tomllib
from pathlib import Path

from kiosk.core.policy import MESSAGES

LOGGER = logging.getLogger(__name__)

LANGS = ("zh", "en")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


class Catalogue:
    """The words of one language. ``t("door_open.title", door=2)``; a missing key never raises."""

    def __init__(self, lang: str, entries: dict[str, str]) -> None:
        self.lang = lang
        self.entries = entries
        self.missing: set[str] = set()          # keys asked for and not found (logged once each)

    def t(self, key: str, **values: object) -> str:
        text = self.entries.get(key)
        if text is None:
            if key not in self.missing:
                self.missing.add(key)
                LOGGER.error("screen text %s is missing from the %s catalogue", key, self.lang)
            return key
        return _format(text, values) if values else text

    def has(self, key: str) -> bool:
        return key in self.entries

    def reason(self, reason: str | None, **values: object) -> str:
        """A refusal or status text from kiosk.core.policy.MESSAGES (the one source), else a generic one."""
        pair = MESSAGES.get(reason or "")
        if pair is None:
            if self.has(f"choosing.{reason}"):
                return self.t(f"choosing.{reason}")
            return self.t("refused.generic")
        return _format(pair[0] if self.lang == "zh" else pair[1], values)

    def doors(self, doors: tuple[int, ...] | list[int]) -> str:
        return self.t("common.list_sep").join(str(d) for d in doors)


def _format(text: str, values: dict) -> str:
    try:
        return text.format_map(_Blank(values))
    except (ValueError, IndexError, AttributeError) as exc:
        LOGGER.error("screen text %r does not format (%s)", text, exc)
        return text


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": "x"}}`` -> ``{"a.b": "x"}``."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = str(value)
    return flat


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a catalogue text expects."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@functools.cache
def catalogue(lang: str) -> Catalogue:
    """The catalogue for ``lang`` ("zh" or "en"), read once."""
    if lang not in LANGS:
        raise ValueError(f"no screen language {lang!r} (languages: {', '.join(LANGS)})")
    path = LOCALE_DIR / f"{lang}.toml"
    with path.open("rb") as f:
        return Catalogue(lang, flatten(tomllib.load(f)))
