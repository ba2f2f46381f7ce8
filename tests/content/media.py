"""Test media: short H.264 clips and pictures made with PyAV and pygame, and signed content installed in a store."""

from __future__ import annotations

import array
import json
import logging
import math
import os
import shutil
from pathlib import Path

import av
import pygame
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.content.manifest import created_now, sign
from kiosk.content.store import ContentStore, Installed, sha256_file

LOGGER = logging.getLogger(__name__)

FPS = 30
RED, GREEN, BLUE, YELLOW, MAGENTA, ORANGE = ((230, 40, 40), (40, 200, 60), (50, 90, 230), (240, 220, 30),
                                             (220, 50, 200), (250, 140, 20))
BAND = 0.25           # the right quarter of every frame: a grey whose level counts the frames
BAND_BASE = 40        # frame 0's grey (never black)


def band_step(frames: int) -> int:
    return max(1, (255 - BAND_BASE) // max(1, frames))


def frame_pixels(colour: tuple[int, int, int], size: tuple[int, int], index: int, frames: int) -> bytes:
    """One frame, RGB: ``colour`` with the counting band on the right."""
    w, h = size
    band_w = int(w * BAND)
    grey = BAND_BASE + index * band_step(frames)
    row = bytes(colour) * (w - band_w) + bytes((grey, grey, grey)) * band_w
    return row * h


def make_clip(path: Path, colour: tuple[int, int, int], *, seconds: float = 1.0, size: tuple[int, int] = (320, 180),
              fps: int = FPS, audio: bool = False, tone: float = 0.0, pattern: bool = False) -> Path:
    """An H.264 MP4 (yuv420p) of ``colour``: every frame bright, never black; its right quarter a grey that
    counts the frames (see ``frame_index``). ``audio`` adds an AAC track, silent unless ``tone`` gives it a
    sine wave of that many Hz at half scale; ``pattern`` draws moving shapes and noise over the colour (a
    realistic load for a decoder, as the benchmark wants)."""
    frames = max(1, round(seconds * fps))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        video.options = {"preset": "veryfast" if pattern else "ultrafast", "crf": "23"}
        sound = None
        if audio or tone:
            sound = out.add_stream("aac", rate=48000)
            sound.layout = "mono"
        canvas = _Pattern(size, colour) if pattern else None
        for i in range(frames):
            data = canvas.frame(i) if canvas else frame_pixels(colour, size, i, frames)
            frame = _rgb_frame(data, size)
            frame.pts = i
            for packet in video.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            samples, n = round(seconds * 48000), 0
            while n < samples:
                chunk = av.AudioFrame(format="fltp", layout="mono", samples=1024)
                wave = array.array("f", (0.5 * math.sin(2 * math.pi * tone * (n + i) / 48000) for i in range(1024)))
                pcm = wave.tobytes()
                chunk.planes[0].update(pcm + bytes(chunk.planes[0].buffer_size - len(pcm)))
                chunk.sample_rate, chunk.pts = 48000, n
                n += 1024
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def _rgb_frame(data: bytes, size: tuple[int, int]) -> av.VideoFrame:
    w, h = size
    frame = av.VideoFrame(w, h, "rgb24")
    plane, row = frame.planes[0], w * 3
    if plane.line_size != row:                # rows padded for alignment
        pad = bytes(plane.line_size - row)
        data = b"".join(data[y * row:(y + 1) * row] + pad for y in range(h))
    plane.update(data)
    return frame


class _Pattern:
    """Moving bars and a scrolling noise tile over a colour: something a decoder has to work for."""

    def __init__(self, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
        self.size, self.colour = size, colour
        self.tile = pygame.image.frombytes(os.urandom(128 * 128 * 3), (128, 128), "RGB")
        self.surface = pygame.Surface(size)

    def frame(self, i: int) -> bytes:
        w, h = self.size
        s = self.surface
        s.fill(self.colour)
        for k in range(8):
            x = (i * (6 + k) + k * w // 8) % w
            s.fill(((40 * k) % 256, 255 - 30 * k, (90 + 20 * k) % 256), pygame.Rect(x, k * h // 8, w // 10, h // 8))
        for y in range(0, h, 256):
            s.blit(self.tile, ((i * 8) % w, y + (i * 3) % 128))
        return pygame.image.tobytes(s, "RGB")


def frame_index(colour: tuple[int, int, int], frames: int) -> int:
    """Which frame a grey read from the counting band belongs to."""
    return round((sum(colour[:3]) / 3 - BAND_BASE) / band_step(frames))


def make_picture(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> Path:
    """A PNG of one bright colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    surface = pygame.Surface(size)
    surface.fill(colour)
    pygame.image.save(surface, str(path))
    return path


def make_junk(path: Path, size: int = 20_000) -> Path:
    """Random bytes (named as the caller likes: ``x.mp4``, ``x.png``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def make_truncated(source: Path, path: Path) -> Path:
    """The first half of ``source``: a download cut off midway."""
    data = source.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 16) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a[:3], b[:3]))


class Library:
    """The library's side (a signing key, a version counter) and a bookcase's ContentStore at ``root``."""

    def __init__(self, root: Path, name: str = "test") -> None:
        self.key = Ed25519PrivateKey.generate()
        self.name = name
        self.store = ContentStore(root, (self.key.public_key(),))
        self.version = 0

    def publish(self, items: list[dict], files: dict[str, Path], fallback: tuple[str, ...] = ()) -> Installed:
        """Sign a manifest of ``items`` with ``files`` (asset name -> file) and install it, as the updater does."""
        self.store.prepare()
        assets = {}
        for name, path in files.items():
            digest = sha256_file(path)
            assets[name] = {"sha256": digest, "bytes": path.stat().st_size}
            if not self.store.has(digest):
                part = self.store.part_path(digest)
                shutil.copyfile(path, part)
                self.store.admit(part, digest)
        self.version += 1
        doc = {"format": 1, "library": self.name, "version": self.version, "created": created_now(),
               "assets": assets, "items": items, "fallback": list(fallback)}
        raw = json.dumps(doc, ensure_ascii=False, indent=1).encode()
        return self.store.install(raw, sign(raw, self.key))
