"""The demo's tester panel fits its window: with the fleet's extra button too, its feedback line stays on it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pygame
import pytest

from kiosk.config import load_config
from simulators.bookcase import SimulatedBookcase
from simulators.demo_panel import NOTE, Panel

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("fleet", [False, True], ids=["alone", "fleet"])
@pytest.mark.parametrize("height", [960, 768, 1080])
def test_the_feedback_line_is_drawn_inside_the_panel(tmp_path, fonts, fleet, height):
    cfg = load_config(ROOT / "config" / "demo.toml")
    sim = SimulatedBookcase(cfg, tmp_path / "sim")                 # its world only: no pty is opened
    demo = SimpleNamespace(sim=sim, peer=SimpleNamespace(id="MH-0102") if fleet else None)
    surface = pygame.Surface((360, height))
    panel = Panel(demo, surface, (0, 0), fonts)
    panel.message = "took MH20200061 from door 2"
    bottom = panel.draw()
    # The feedback line is the only text in NOTE's colour while every door is shut: it must be on the panel,
    # whole.
    shown = pygame.mask.from_threshold(surface, NOTE, (60, 60, 60, 255)).count()
    assert shown > 100, "the feedback line is not on the panel"
    assert bottom <= height, f"the feedback line ends at {bottom}, below the {height} px panel"
    assert any(b.label.startswith("Return a book at") for b in panel.buttons) == fleet
    assert all(b.rect is not None and b.rect.bottom <= height for b in panel.buttons)
