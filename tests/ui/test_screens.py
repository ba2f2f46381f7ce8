"""Every screen, both languages, portrait and landscape: no missing glyph, no text outside its box, big targets."""

from __future__ import annotations

import pytest

from kiosk.ui.samples import STATES, samples, variants
from kiosk.ui.screens import screen_name
from kiosk.ui.screenshot import sample_ui
from kiosk.ui.theme import MIN_TARGET_PX

SIZES = [(1080, 1920), (1920, 1080)]
VARIANTS = variants()

EXPECTED_SCREEN = {"attract": "attract", "identifying": "identifying", "refused": "refused",
                   "door_open": "door_open", "scanning": "scanning", "receipt": "receipt",
                   "out_of_service": "out_of_service", "staff_pin": "staff_pin", "staff_restock": "staff_restock",
                   "diagnostics": "diagnostics", "choosing": "choosing", "find": "find", "help": "help"}


def check_frame(ui, fonts, where: str, *, allow_cut: bool = False) -> None:
    assert ui.errors == 0, f"{where}: the screen failed to draw"
    assert ui.painter.texts, f"{where}: nothing drawn"
    for t in ui.painter.texts:
        for line in t.lines:
            missing = fonts.missing(line, t.bold)
            assert not missing, f"{where}: no glyph for {sorted(missing)} in {line!r}"
        if t.lines != ("",):
            assert t.box.contains(t.rect), f"{where}: {t.text!r} drawn at {t.rect} outside its box {t.box}"
            assert ui.surface.get_rect().contains(t.rect), f"{where}: {t.text!r} off the screen at {t.rect}"
        if not allow_cut:
            assert not t.truncated, f"{where}: {t.text!r} had to be cut to fit {t.box} at {t.size} px"
    targets = [t for t in ui.painter.targets if t.key != "background"]
    for t in targets:
        assert t.rect.width >= MIN_TARGET_PX and t.rect.height >= MIN_TARGET_PX, \
            f"{where}: target {t.key} is only {t.rect.size}"
        assert ui.surface.get_rect().contains(t.rect), f"{where}: target {t.key} at {t.rect} is off the screen"
    for i, a in enumerate(targets):
        for b in targets[i + 1:]:
            assert not a.rect.colliderect(b.rect), f"{where}: targets {a.key} and {b.key} overlap"


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_screenshot_state_renders(fonts, lang, size):
    for state in STATES:
        ui = sample_ui(samples()[state], lang, size, fonts)
        assert ui.current == EXPECTED_SCREEN[state]
        check_frame(ui, fonts, f"{state}/{lang}/{size}")


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_hard_cases_fit(fonts, lang, size):
    for name, sample in VARIANTS.items():
        ui = sample_ui(sample, lang, size, fonts)
        assert ui.current == screen_name(sample.snap, sample.page)
        check_frame(ui, fonts, f"{name}/{lang}/{size}")


def test_refusals_come_from_the_policy_messages(fonts):
    from kiosk.core.policy import MESSAGES
    for reason, (zh, en) in MESSAGES.items():
        for lang, text in (("zh", zh), ("en", en)):
            ui = sample_ui(VARIANTS[f"refused-{reason}"], lang, (1080, 1920), fonts)
            expected = text.format(limit=15, may_borrow=3)
            assert any(t.text == expected for t in ui.painter.texts), (reason, lang)


def test_long_receipt_says_how_many_more(fonts):
    ui = sample_ui(VARIANTS["receipt-long"], "zh", (1920, 1080), fonts)
    texts = [t.text for t in ui.painter.texts]
    assert any(t.startswith("另有") for t in texts), texts
    assert "借阅 15 册" in texts


@pytest.mark.parametrize("size", [(540, 960), (800, 480), (1280, 1024)], ids=str)
def test_other_sizes_draw_without_errors(fonts, size):
    for state in STATES:
        for lang in ("zh", "en"):
            ui = sample_ui(samples()[state], lang, size, fonts)
            assert ui.errors == 0 and ui.current == EXPECTED_SCREEN[state]
            for t in ui.painter.texts:
                assert not fonts.missing("".join(t.lines), t.bold)
