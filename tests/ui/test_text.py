"""Line breaking: per character in Chinese with the punctuation rules, per word in English."""

from __future__ import annotations

from kiosk.ui.text import NO_LINE_END, NO_LINE_START, ellipsize, tokens, wrap


def measure(s: str) -> int:
    return len(s)


def test_chinese_breaks_between_characters_but_never_before_closing_punctuation():
    lines = wrap("您好！您还可以借十五册。请选择柜门。", 6, measure)
    assert "".join(lines) == "您好！您还可以借十五册。请选择柜门。"
    for line in lines[1:]:
        assert line[0] not in NO_LINE_START, lines
    for line in lines[:-1]:
        assert line[-1] not in NO_LINE_END, lines


def test_opening_marks_stay_with_what_follows():
    lines = wrap("推荐《高考1978》和《端午》", 5, measure)
    assert all(not line.endswith("《") for line in lines), lines
    assert "《高" in "".join(lines)
    assert "1978》" in tokens("《高考1978》")


def test_english_breaks_between_words_and_keeps_times_and_hyphens_whole():
    lines = wrap("Every Saturday 13:00–15:00 with your e-card, please.", 16, measure)
    assert lines == ["Every Saturday", "13:00–15:00 with", "your e-card,", "please."]


def test_mixed_text_and_forced_breaks():
    assert wrap("DK蘑菇大百科", 4, measure) == ["DK蘑菇", "大百科"]
    assert wrap("一\n二", 10, measure) == ["一", "二"]
    assert wrap("", 10, measure) == [""]


def test_an_over_long_word_is_broken_as_a_last_resort():
    assert wrap("abcdefghij", 4, measure) == ["abcd", "efgh", "ij"]


def test_ellipsize_fits_the_width():
    assert ellipsize("思君令人老努力加餐饭", 5, measure) == "思君令人…"
    assert ellipsize("短", 5, measure) == "短…"
