"""Noto Sans CJK (package fonts-noto-cjk) through pygame.freetype, with caches for measuring and rendering."""

from __future__ import annotations

import collections
import logging
from pathlib import Path

import pygame
import pygame.freetype

from kiosk.ui import UIError

LOGGER = logging.getLogger(__name__)

FONT_DIRS = ("/usr/share/fonts/opentype/noto", "/usr/share/fonts/noto-cjk", "/usr/share/fonts/google-noto-cjk",
             "/usr/share/fonts/truetype/noto", "/usr/local/share/fonts", "/usr/share/fonts")
REGULAR, BOLD = "NotoSansCJK-Regular.ttc", "NotoSansCJK-Bold.ttc"
PREFERRED_FACE = "Noto Sans CJK SC"        # Simplified Chinese glyph forms in the .ttc collection
RENDER_CACHE = 600
CJK_PROBE = "城市书柜借还"                    # a font without these cannot draw the screen


class FontError(UIError):
    """No usable CJK font."""


def find_cjk_fonts(dirs: tuple[str, ...] | list[str] | None = None) -> tuple[Path, Path | None]:
    """The regular and (if present) bold Noto Sans CJK files (in ``dirs``, default FONT_DIRS); FontError
    naming the package otherwise."""
    dirs = FONT_DIRS if dirs is None else dirs
    for folder in map(Path, dirs):
        regular = folder / REGULAR
        if regular.is_file():
            bold = folder / BOLD
            return regular, bold if bold.is_file() else None
    for folder in map(Path, dirs):
        if folder.is_dir():
            found = sorted(folder.rglob("NotoSansCJK*-Regular.tt[cf]")) + sorted(folder.rglob("NotoSansSC-Regular.otf"))
            if found:
                return found[0], None
    raise FontError("no Chinese (CJK) font found: looked for Noto Sans CJK (" + REGULAR + ") in "
                    + ", ".join(dirs) + "; install it with: apt-get install fonts-noto-cjk")


def _open_face(path: Path) -> pygame.freetype.Font:
    first = None
    for index in range(10):
        try:
            face = pygame.freetype.Font(str(path), 0, font_index=index)
        except (OSError, pygame.error):
            break
        first = first or face
        if face.name == PREFERRED_FACE:
            return face
    if first is None:
        raise FontError(f"{path}: cannot be opened as a font")
    return first


class Fonts:
    """Two faces (regular, bold) with cached measuring and rendering; sizes are in pixels."""

    def __init__(self, regular: Path, bold: Path | None = None) -> None:
        if not pygame.freetype.get_init():
            pygame.freetype.init()
        self.regular = _open_face(regular)
        self.bold = _open_face(bold) if bold else _open_face(regular)
        self._synthetic_bold = bold is None
        for face in (self.regular, self.bold):
            face.antialiased = True
            face.pad = False
        self.paths = (regular, bold)
        if self.missing(CJK_PROBE):
            raise FontError(f"{regular} has no Chinese glyphs (no {''.join(sorted(self.missing(CJK_PROBE)))}); "
                            "install Noto Sans CJK with: apt-get install fonts-noto-cjk")
        self._rects: dict[tuple[str, int, bool], pygame.Rect] = {}
        self._renders: collections.OrderedDict = collections.OrderedDict()
        LOGGER.info("screen font %s (%s)", regular, self.regular.name)

    @classmethod
    def find(cls, dirs: tuple[str, ...] | list[str] | None = None) -> Fonts:
        return cls(*find_cjk_fonts(dirs))

    def face(self, bold: bool = False) -> pygame.freetype.Font:
        return self.bold if bold else self.regular

    def _style(self, bold: bool) -> int:
        return pygame.freetype.STYLE_STRONG if bold and self._synthetic_bold else pygame.freetype.STYLE_DEFAULT

    def rect(self, text: str, size: int, bold: bool = False) -> pygame.Rect:
        """The text's bounding box relative to its origin on the baseline (y is the top above it)."""
        key = (text, size, bold)
        r = self._rects.get(key)
        if r is None:
            if len(self._rects) > 20000:
                self._rects.clear()
            r = self.face(bold).get_rect(text, style=self._style(bold), size=size) if text else pygame.Rect(0, 0, 0, 0)
            self._rects[key] = r
        return r

    def width(self, text: str, size: int, bold: bool = False) -> int:
        """The ink's width, counting from the origin or from a glyph reaching left of it ("Y", "j")."""
        if not text:
            return 0
        r = self.rect(text, size, bold)
        return r.x + r.width - min(0, r.x)

    def ascender(self, size: int, bold: bool = False) -> int:
        return self.face(bold).get_sized_ascender(size)

    def line_height(self, size: int, bold: bool = False) -> int:
        face = self.face(bold)
        return face.get_sized_ascender(size) - face.get_sized_descender(size)

    def render(self, text: str, size: int, color: tuple[int, int, int], bold: bool = False
               ) -> tuple[pygame.Surface, pygame.Rect]:
        """A surface with the text and its rect relative to the origin (cached)."""
        key = (text, size, color, bold)
        hit = self._renders.get(key)
        if hit is not None:
            self._renders.move_to_end(key)
            return hit
        surface, rect = self.face(bold).render(text, color, style=self._style(bold), size=size)
        self._renders[key] = (surface, rect)
        if len(self._renders) > RENDER_CACHE:
            self._renders.popitem(last=False)
        return surface, rect

    def missing(self, text: str, bold: bool = False) -> set[str]:
        """Characters of ``text`` the font has no glyph for (whitespace aside)."""
        chars = [c for c in dict.fromkeys(text) if not c.isspace()]
        if not chars:
            return set()
        metrics = self.face(bold).get_metrics("".join(chars), size=24)
        return {c for c, m in zip(chars, metrics) if m is None}
