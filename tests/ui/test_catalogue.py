"""The message catalogues: same keys and placeholders in both languages, every glyph in the font."""

from __future__ import annotations

import re

from kiosk.core.policy import MESSAGES
from kiosk.ui.i18n import LANGS, Catalogue, catalogue, placeholders
from kiosk.ui.voice import PROMPTS
from tests.ui.layout import WORD, ZH_ASCII_WORDS


def test_both_languages_have_the_same_keys_and_placeholders():
    zh, en = catalogue("zh").entries, catalogue("en").entries
    assert set(zh) == set(en), f"only in zh: {set(zh) - set(en)}; only in en: {set(en) - set(zh)}"
    for key in zh:
        assert placeholders(zh[key]) == placeholders(en[key]), key
        assert zh[key].strip() and en[key].strip(), key


def test_every_text_and_refusal_has_its_glyphs_in_the_font(fonts):
    texts = [text for lang in LANGS for text in catalogue(lang).entries.values()]
    texts += [text for pair in MESSAGES.values() for text in pair]
    for text in texts:
        for bold in (False, True):
            assert not fonts.missing(text, bold), (text, fonts.missing(text, bold))


def test_refusals_come_from_the_policy_and_unknown_reasons_get_a_generic_text():
    assert catalogue("zh").reason("at_limit", limit=15) == MESSAGES["at_limit"][0].format(limit=15)
    assert catalogue("en").reason("welcome", may_borrow=3) == MESSAGES["welcome"][1].format(may_borrow=3)
    assert catalogue("en").reason("door_failed") == catalogue("en").t("choosing.door_failed")
    assert catalogue("zh").reason("no_such_reason") == catalogue("zh").t("refused.generic")
    assert catalogue("zh").reason(None) == catalogue("zh").t("refused.generic")


def test_the_chinese_texts_are_chinese():
    for text in [*catalogue("zh").entries.values(), *(zh for zh, _ in MESSAGES.values())]:
        words = set(WORD.findall(re.sub(r"\{[^}]*\}", "", text)))
        assert words <= ZH_ASCII_WORDS, (text, words - ZH_ASCII_WORDS)


def test_missing_keys_and_bad_values_never_raise():
    cat = Catalogue("en", dict(catalogue("en").entries))     # not the shared one: the screen tests check it
    assert cat.t("no.such.key") == "no.such.key" and cat.missing == {"no.such.key"}
    assert cat.t("door_open.title") == "Door {door} is open"          # no values: the raw text
    assert cat.t("door_open.title", other=1) == "Door  is open"       # a missing value is left blank


def test_every_voice_prompt_has_a_text():
    for lang in LANGS:
        for prompt in PROMPTS:
            assert catalogue(lang).has(f"voice.{prompt}")
