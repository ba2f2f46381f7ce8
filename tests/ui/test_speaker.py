"""The videos' sound: muted by default; at ``[screen] video_volume`` through a real SDL mixer whose output SDL's
disk driver writes to a file, which the tests read back (pitch, loudness, silence while paused)."""

from __future__ import annotations

import array
import itertools
import logging
import os
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pygame
import pytest

from kiosk.config import load_config
from kiosk.core.snapshot import Snapshot
from kiosk.ui.runner import content_promo
from kiosk.ui.screens.playlist import Playlist
from kiosk.ui.speaker import Speaker
from kiosk.ui.video import Video
from tests.content.media import GREEN, RED, Library, make_clip
from tests.scenarios.harness import write_config
from tests.ui.support import Holder, window_ui

TZ = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 12, 1, 12, 0, tzinfo=TZ)
RATE, CHANNELS = 48000, 2
TONE_HZ = 440.0
QUIET = 64                # |sample| at or under this counts as silence (AAC's ringing at the edges)
HANG_S = 20.0             # real seconds: only against a player that never finishes


class Output:
    """The mixer re-opened on SDL's disk driver: what the bookcase would send to its speakers, in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def samples(self, start_byte: int = 0) -> array.array:
        """The left channel from ``start_byte`` of the file on."""
        data = self.path.read_bytes()[start_byte:]
        pcm = array.array("h", data[:len(data) // 4 * 4])
        return pcm[0::CHANNELS]

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def wait_for(self, done) -> None:
        """Until ``done()``: the disk driver writes in real time, as slowly as this machine lets it."""
        deadline = time.monotonic() + HANG_S
        while not done():
            assert time.monotonic() < deadline, "the mixer's output stopped"
            time.sleep(0.02)


@pytest.fixture
def output(tmp_path):
    saved = {k: os.environ.get(k) for k in ("SDL_AUDIODRIVER", "SDL_DISKAUDIOFILE")}
    pygame.mixer.quit()
    os.environ["SDL_AUDIODRIVER"] = "disk"
    os.environ["SDL_DISKAUDIOFILE"] = str(tmp_path / "speakers.raw")
    pygame.mixer.init(frequency=RATE, size=-16, channels=CHANNELS, buffer=1024)
    try:
        yield Output(tmp_path / "speakers.raw")
    finally:
        pygame.mixer.quit()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def sounding(left: array.array, spans: list[tuple[int, int]] | None = None) -> array.array:
    """The samples of every stretch of sound in ``left`` (of ``spans``), end to end: a screen that stalled
    for a moment (this machine is shared) puts a silence between two stretches, not a wrong note."""
    spans = loud_spans(left) if spans is None else spans
    assert spans, "nothing but silence came out"
    out = array.array("h")
    for a, b in spans:
        out.extend(left[a:b + 1])
    return out


def loud_spans(left: array.array, gap_s: float = 0.05) -> list[tuple[int, int]]:
    """(first, last) sample of each stretch of sound; a quieter moment shorter than ``gap_s`` (a sine crossing
    zero) does not end one."""
    spans: list[list[int]] = []
    for i, x in enumerate(left):
        if abs(x) > QUIET:
            if spans and i - spans[-1][1] <= gap_s * RATE:
                spans[-1][1] = i
            else:
                spans.append([i, i])
    return [(a, b) for a, b in spans]


def pitch(left: array.array) -> float:
    """Hz, from the rising zero crossings."""
    rises = sum(1 for a, b in itertools.pairwise(left) if a < 0 <= b)
    return rises * RATE / len(left)


def play(video: Video, speaker: Speaker, until) -> None:
    """The screen's side in real time: frames and sound, every 10 ms, until ``until()``."""
    t0 = time.monotonic()
    while not until():
        assert time.monotonic() - t0 < HANG_S, "the video never finished"
        video.frame_at(time.monotonic() - t0)
        speaker.feed(video)
        time.sleep(0.01)


def test_a_clips_sound_comes_out_at_its_pitch_and_the_set_volume(tmp_path, output):
    clip = make_clip(tmp_path / "tone.mp4", RED, seconds=1.0, tone=TONE_HZ)
    peaks = {}
    for volume in (0.8, 0.4):
        speaker = Speaker(volume)
        assert speaker.format == (RATE, CHANNELS)
        start = output.size()
        video = Video(clip, (320, 180), sound=speaker.format).start()
        try:
            play(video, speaker, lambda v=video, s=speaker: v.ended and not v.has_sound and not s.playing)
        finally:
            video.close()
        end = output.size()
        output.wait_for(lambda e=end: output.size() > e + RATE * 4 * 0.2)     # the last buffers reach the file
        left = sounding(output.samples(start))
        assert abs(pitch(left) - TONE_HZ) < TONE_HZ * 0.03
        assert 0.9 < len(left) / RATE < 1.1, "the whole second of sound, once"
        peaks[volume] = max(abs(x) for x in left)
    assert 1.7 < peaks[0.8] / peaks[0.4] < 2.3


def test_pausing_the_picture_pauses_the_sound(tmp_path, output):
    clip = make_clip(tmp_path / "tone.mp4", RED, seconds=3.0, tone=TONE_HZ)
    speaker = Speaker(0.8)
    video = Video(clip, (320, 180), sound=speaker.format).start()
    try:
        t0 = time.monotonic()
        play(video, speaker, lambda: time.monotonic() - t0 > 0.5)
        mark = output.size()
        speaker.pause()
        output.wait_for(lambda: output.size() > mark + RATE * 4 * 0.8)     # 0.8 s written since the pause
        # What was mixed before the pause may still reach the file (a buffer or two: 21 ms each); the two
        # chunks waiting on the channel (up to 0.4 s) must not.
        after = output.samples(mark)
        assert sum(b - a + 1 for a, b in loud_spans(after)) < 0.1 * RATE, "sound went on after the pause"
        mark = output.size()
        speaker.feed(video)                  # the picture goes on: so does the sound
        output.wait_for(lambda: any(abs(x) > 1000 for x in output.samples(mark)))
    finally:
        speaker.stop()
        video.close()


def test_the_playlist_plays_each_clips_own_sound_in_turn(tmp_path, output, fonts):
    library = Library(tmp_path / "content")
    library.publish([{"id": "tone", "kind": "video", "asset": "video/tone.mp4"},
                     {"id": "quiet", "kind": "video", "asset": "video/quiet.mp4"}],
                    {"video/tone.mp4": make_clip(tmp_path / "tone.mp4", RED, seconds=1.0, tone=TONE_HZ),
                     "video/quiet.mp4": make_clip(tmp_path / "quiet.mp4", GREEN, seconds=1.0, audio=True)})
    playlist = Playlist(library.store, TZ, wallclock=lambda: NOON, speaker=Speaker(0.8))
    ui = window_ui(fonts, Holder(Snapshot(state="idle", doors_in_service=(1,))), promo=playlist, size=(540, 960))
    seen: list[str] = []
    start = output.size()
    try:
        deadline = time.monotonic() + HANG_S
        back = None
        while back is None or time.monotonic() < back + 0.3:     # tone, quiet, and a little of tone again
            assert time.monotonic() < deadline, f"the playlist got stuck: {seen}"
            ui.step()
            if playlist.showing and (not seen or seen[-1] != playlist.showing):
                seen.append(playlist.showing)
                if seen == ["tone", "quiet", "tone"]:
                    back = time.monotonic()
            time.sleep(0.01)
    finally:
        ui.close()
    left = output.samples(start)
    spans = loud_spans(left)
    assert len(spans) >= 2, f"expected the tone, silence, the tone again: sound at {spans}"
    gaps = [(spans[i + 1][0] - spans[i][1], i) for i in range(len(spans) - 1)]
    longest, before = max(gaps)
    assert longest / RATE > 0.8, "the silent clip's turn was silent"
    first = sounding(left, spans[:before + 1])
    assert abs(pitch(first) - TONE_HZ) < TONE_HZ * 0.03
    assert 0.9 < len(first) / RATE < 1.1, "the tone's whole second, once"


def test_muted_by_default_the_sound_is_not_even_decoded(tmp_path):
    config = load_config(write_config(tmp_path))
    assert config.screen.video_volume == 0.0
    assert content_promo(config).speaker is None
    path = write_config(tmp_path)
    path.write_text(path.read_text(encoding="utf-8") + "[screen]\nvideo_volume = 0.5\n", encoding="utf-8")
    loud = load_config(path)
    assert loud.screen.video_volume == 0.5 and content_promo(loud).speaker.format is not None
    clip = make_clip(tmp_path / "tone.mp4", RED, seconds=0.3, tone=TONE_HZ)
    video = Video(clip, (320, 180)).start()
    try:
        deadline = time.monotonic() + HANG_S
        while not video.first_ready:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert not video.has_sound and video.take_sound(48000) == b""
    finally:
        video.close()


def test_a_clip_without_a_sound_track_plays_its_picture(tmp_path, output):
    speaker = Speaker(0.8)
    video = Video(make_clip(tmp_path / "mute.mp4", RED, seconds=0.5), (320, 180), sound=speaker.format).start()
    try:
        play(video, speaker, lambda: video.ended)
    finally:
        video.close()
    assert video.error is None and video.counts.shown > 0 and not video.has_sound


def test_without_an_audio_device_the_videos_play_silent(tmp_path, caplog, monkeypatch):
    pygame.mixer.quit()
    monkeypatch.setenv("SDL_AUDIODRIVER", "no-such-driver")
    with caplog.at_level(logging.WARNING, logger="kiosk.ui.speaker"):
        speaker = Speaker(0.5)
    pygame.mixer.quit()
    assert not speaker.available and speaker.format is None
    assert "no usable audio device" in caplog.text and "play silent" in caplog.text
    library = Library(tmp_path / "content")
    library.publish([{"id": "a", "kind": "video", "asset": "video/a.mp4"}],
                    {"video/a.mp4": make_clip(tmp_path / "a.mp4", RED, seconds=0.3, tone=TONE_HZ)})
    assert Playlist(library.store, TZ, speaker=speaker).speaker is None
