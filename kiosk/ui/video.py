"""A video file decoded in a worker thread (PyAV): its picture scaled to fit a region, a few frames ahead, and
its sound (when asked for) as PCM in the mixer's format for kiosk.ui.speaker."""

from __future__ import annotations

import collections
import logging
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import av
import pygame

LOGGER = logging.getLogger(__name__)

QUEUE_FRAMES = 4             # decoded frames held ahead of the screen; the worker waits when they are all there
DEFAULT_FRAME_S = 1 / 30     # when the file does not say its frame rate
JOIN_S = 2.0
WIDTH_STEP_PX = 16           # frame widths a multiple of this: rows without padding, one copy per frame
# Frames are made in the layout of the display's own 32-bit surfaces (XRGB8888), so a blit is a plain copy.
PIX_FMT = "bgr0" if sys.byteorder == "little" else "0rgb"
MASKS = (0xFF0000, 0x00FF00, 0x0000FF, 0)
SOUND_AHEAD_S = 2.0          # sound decoded ahead of the speaker at most


class _Unplayable(Exception):
    """A file that opens but holds nothing to show."""


def fit(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The largest (width, height) of ``size``'s aspect ratio inside ``box``; width a multiple of 16, height even."""
    w, h = size
    scale = min(box[0] / w, box[1] / h)
    fw = max(WIDTH_STEP_PX, int(w * scale) // WIDTH_STEP_PX * WIDTH_STEP_PX)
    fh = max(2, round(fw * h / w / 2) * 2)
    return fw, min(fh, max(2, box[1] // 2 * 2))


def describe(exc: BaseException) -> str:
    """What went wrong, in words for the person who made or copied the file."""
    if isinstance(exc, _Unplayable):
        return str(exc)
    if isinstance(exc, av.InvalidDataError):
        return "the file is damaged or is not a video ffmpeg can read (cut short, or another format)"
    if isinstance(exc, av.DecoderNotFoundError):
        return "its picture is in a format this bookcase cannot decode (use H.264 MP4)"
    if isinstance(exc, OSError):
        return f"the file cannot be read ({exc.strerror or exc})"
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Counts:
    """Frames decoded, shown on screen, skipped because a later one was already due, and shown late."""
    decoded: int = 0
    shown: int = 0
    dropped: int = 0
    late: int = 0


class Video:
    """``path`` decoded in a daemon thread into pygame surfaces that fit ``size`` (aspect ratio kept).

    ``start()``, then ``frame_at(t)`` on the screen's thread: the newest frame due ``t`` seconds after the
    first one (None: no newer frame yet; keep the last one up). A file that cannot be played sets ``error``
    (words for an operator) and ends the worker; nothing is raised into the screen. The worker stays at most
    ``QUEUE_FRAMES`` ahead, so a video nobody asks frames of costs no CPU.

    ``sound=(rate, channels)`` also decodes the first sound track into signed 16-bit PCM at that rate, for
    ``take_sound``, in a second thread that reads the file on its own (so the picture's few frames ahead do
    not limit how far ahead the sound is); without it (the default: muted) the sound is not even decoded. The
    sound plays from its first sample when the picture's first frame does; a sound track that will not
    decode stops there and the picture plays on.
    """

    def __init__(self, path: Path | str, size: tuple[int, int], *, name: str = "",
                 queue_frames: int = QUEUE_FRAMES, sound: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.box = (max(WIDTH_STEP_PX, size[0]), max(2, size[1]))
        self.name = name or self.path.name
        self.error: str | None = None
        self.duration_s: float | None = None      # the file's own figure once open; exact once decoded to the end
        self.frame_s = DEFAULT_FRAME_S
        self.size: tuple[int, int] | None = None  # the frames' size, once open
        self.counts = Counts()
        self.last_pts: float | None = None        # of the frame frame_at() returned last
        self._limit = max(1, queue_frames)
        self.sound = sound
        self.sound_bytes_s = sound[0] * sound[1] * 2 if sound else 0
        self._pcm: collections.deque[bytes] = collections.deque()
        self._pcm_bytes = 0
        self._sounding = sound is not None         # a sound track is (or may yet be) being decoded
        self._frames: collections.deque[tuple[float, pygame.Surface]] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._done = False
        self._first = False
        self._thread = threading.Thread(target=self._run, name=f"video {self.name}"[:60], daemon=True)
        self._sound_thread = (threading.Thread(target=self._run_sound, name=f"video sound {self.name}"[:60],
                                               daemon=True) if sound else None)

    # --- the screen's side ----------------------------------------------------------------------

    def start(self) -> Video:
        self._thread.start()
        if self._sound_thread is not None:
            self._sound_thread.start()
        return self

    @property
    def first_ready(self) -> bool:
        """The first frame is decoded: the video can go on screen without a blank moment."""
        return self._first

    @property
    def ended(self) -> bool:
        """The worker has stopped (end of file, error or close) and every frame was handed out."""
        with self._cond:
            return self._done and not self._frames

    @property
    def busy(self) -> bool:
        """The worker is decoding: not waiting for room in the queue, and not finished."""
        with self._cond:
            return not self._done and len(self._frames) < self._limit

    @property
    def has_sound(self) -> bool:
        """Sound was asked for and the file's sound track is being decoded (or some is still to hand out)."""
        with self._cond:
            return self._sounding or bool(self._pcm)

    @property
    def sound_ready(self) -> int:
        """Bytes of sound decoded and not yet taken."""
        with self._cond:
            return self._pcm_bytes

    @property
    def sounding(self) -> bool:
        """The sound track is still being decoded: more is to come."""
        with self._cond:
            return self._sounding

    def take_sound(self, most: int) -> bytes:
        """Up to ``most`` bytes of the sound decoded so far (whole samples), in order; b"" if none is ready."""
        step = 2 * self.sound[1] if self.sound else 2
        most -= most % step
        out: list[bytes] = []
        got = 0
        with self._cond:
            while self._pcm and got < most:
                chunk = self._pcm.popleft()
                if got + len(chunk) > most:
                    self._pcm.appendleft(chunk[most - got:])
                    chunk = chunk[:most - got]
                out.append(chunk)
                got += len(chunk)
            self._pcm_bytes -= got
            if got:
                self._cond.notify_all()     # the picture and the sound worker wait on it
        return b"".join(out)

    def frame_at(self, t: float) -> pygame.Surface | None:
        """The newest frame due at ``t`` (seconds from the first frame); older ones still waiting are dropped.
        None if no frame has become due since the last call. A frame is due from half a frame interval
        before its time, so a screen that looks every frame interval shows each frame within half an
        interval of its time, whatever the phase between the two."""
        found: tuple[float, pygame.Surface] | None = None
        due = t + self.frame_s / 2
        with self._cond:
            while self._frames and self._frames[0][0] <= due:
                if found is not None:
                    self.counts.dropped += 1
                found = self._frames.popleft()
            if found is not None:
                self._cond.notify_all()     # the picture and the sound worker wait on it
        if found is None:
            return None
        self.counts.shown += 1
        if t - found[0] >= self.frame_s:
            self.counts.late += 1
        self.last_pts = found[0]
        return found[1]

    def close(self) -> None:
        """Stop the worker and wait for it (it finishes the frame in hand: a few milliseconds)."""
        with self._cond:
            self._stop = True
            self._frames.clear()
            self._pcm.clear()
            self._pcm_bytes = 0
            self._cond.notify_all()
        for thread in (self._thread, self._sound_thread):
            if thread is not None and thread.is_alive():
                thread.join(JOIN_S)
                if thread.is_alive():
                    LOGGER.warning("the decoder of %s did not stop within %.0f s", self.name, JOIN_S)

    # --- the worker -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._decode()
        except Exception as exc:
            self.error = describe(exc)
            LOGGER.debug("decoding %s (%s) stopped", self.name, self.path, exc_info=True)
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _decode(self) -> None:
        with av.open(str(self.path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise _Unplayable("the file has no picture (no video track)")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            if rate:
                self.frame_s = 1 / float(rate)
            if stream.duration and stream.time_base:
                self.duration_s = float(stream.duration * stream.time_base)
            elif container.duration:
                self.duration_s = container.duration / av.time_base
            cc = stream.codec_context
            if not cc.width or not cc.height:
                raise _Unplayable("the file's video track has no picture size")
            w, h = self.size = fit((cc.width, cc.height), self.box)
            first: float | None = None
            t = 0.0
            for frame in container.decode(stream):
                if frame.time is not None:
                    first = frame.time if first is None else first
                    t = frame.time - first
                elif first is None:
                    first = 0.0
                else:
                    t += self.frame_s
                if not self._put(t, _surface(frame.reformat(width=w, height=h, format=PIX_FMT,
                                                            interpolation="BILINEAR"))):
                    return
            if first is None:
                raise _Unplayable("the file holds no picture that can be decoded")
            self.duration_s = t + self.frame_s

    def _run_sound(self) -> None:
        rate, channels = self.sound
        try:
            with av.open(str(self.path), metadata_errors="ignore") as container:
                if not container.streams.audio:
                    return                                   # a silent clip: the picture alone
                stream = container.streams.audio[0]
                resampler = av.AudioResampler(format="s16", layout="stereo" if channels == 2 else "mono",
                                              rate=rate)
                size = 2 * channels
                for frame in [*container.decode(stream), None]:      # None: what the resampler still holds
                    for out in resampler.resample(frame):
                        if not self._put_sound(bytes(out.planes[0])[:out.samples * size]):
                            return
        except Exception as exc:  # noqa: BLE001 - the picture plays on, silent from here
            LOGGER.info("the sound of %s stops early: %s", self.name, describe(exc))
        finally:
            with self._cond:
                self._sounding = False
                self._cond.notify_all()

    def _put_sound(self, pcm: bytes) -> bool:
        """Hand sound over, waiting while ``SOUND_AHEAD_S`` of it is ready; False once closed."""
        with self._cond:
            while self._pcm_bytes >= SOUND_AHEAD_S * self.sound_bytes_s and not self._stop:
                self._cond.wait()
            if self._stop:
                return False
            self._pcm.append(pcm)
            self._pcm_bytes += len(pcm)
        return True

    def _put(self, t: float, surface: pygame.Surface) -> bool:
        """Hand a frame over, waiting while the queue is full; False once closed."""
        with self._cond:
            while len(self._frames) >= self._limit and not self._stop:
                self._cond.wait()
            if self._stop:
                return False
            self._frames.append((t, surface))
            self.counts.decoded += 1
            self._first = True
        return True


def _surface(frame: av.VideoFrame) -> pygame.Surface:
    """A VideoFrame in PIX_FMT as a 32-bit surface in the display's layout (one copy)."""
    w, h = frame.width, frame.height
    plane = frame.planes[0]
    surface = pygame.Surface((w, h), 0, 32, MASKS)
    row = w * 4
    with memoryview(surface.get_buffer()).cast("B") as flat:
        if plane.line_size == row == surface.get_pitch():
            flat[:] = plane
        else:                                 # padded rows (an odd width): copy row by row
            src, pitch = memoryview(plane), surface.get_pitch()
            for y in range(h):
                flat[y * pitch:y * pitch + row] = src[y * plane.line_size:y * plane.line_size + row]
    return surface
