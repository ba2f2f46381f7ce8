"""The video decoder: real H.264 files decoded by PyAV in its worker thread, frames handed over by their time."""

from __future__ import annotations

import time

import pytest

from kiosk.ui.video import QUEUE_FRAMES, Video, fit
from tests.content.media import (
    FPS,
    GREEN,
    RED,
    frame_index,
    make_clip,
    make_junk,
    make_truncated,
    near,
)

BOX = (968, 596)           # the attract screen's promotional region, portrait 1080x1920
GUARD_S = 20.0             # only against a hang; no test relies on how fast anything is


def wait_for(predicate, what: str):
    deadline = time.monotonic() + GUARD_S
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)
    return value


@pytest.fixture
def video():
    opened: list[Video] = []

    def open_(path, box=BOX, **kw) -> Video:
        v = Video(path, box, **kw).start()
        opened.append(v)
        return v
    yield open_
    for v in opened:
        v.close()


def test_fit_keeps_the_aspect_ratio_with_whole_rows():
    assert fit((1280, 720), BOX) == (960, 540)
    assert fit((320, 180), (1920, 1080)) == (1920, 1080)
    w, h = fit((720, 1280), BOX)                       # a portrait clip in a landscape region
    assert h <= BOX[1] and w % 16 == 0 and abs(w / h - 720 / 1280) < 0.03


def test_every_frame_comes_in_order_at_its_time_and_size(tmp_path, video):
    v = video(make_clip(tmp_path / "red.mp4", RED, seconds=1.0))
    wait_for(lambda: v.first_ready, "the first frame")
    assert v.size == (960, 540) and v.frame_s == pytest.approx(1 / FPS)
    for i in range(FPS):
        frame = wait_for(lambda i=i: v.frame_at(i / FPS + 0.001), f"frame {i}")
        assert v.last_pts == pytest.approx(i / FPS, abs=1e-3)
        assert frame.get_size() == (960, 540)
        assert near(frame.get_at((100, 270)), RED), frame.get_at((100, 270))
        assert frame_index(frame.get_at((900, 270)), FPS) == i
    wait_for(lambda: v.ended, "the end")
    assert v.error is None and v.duration_s == pytest.approx(1.0, abs=0.01)
    assert (v.counts.decoded, v.counts.shown, v.counts.dropped) == (FPS, FPS, 0)
    assert v.frame_at(99.0) is None                    # nothing after the end


def test_the_newest_frame_due_is_shown_and_older_ones_dropped(tmp_path, video):
    v = video(make_clip(tmp_path / "green.mp4", GREEN, seconds=1.0))
    wait_for(lambda: not v.busy, "the queue to fill")
    assert v.frame_at(-1.0) is None                    # nothing is due before the first frame
    shown = []
    while v.last_pts is None or v.last_pts < 0.5 - 0.5 / FPS:
        shown.append(frame_index(v.frame_at(0.5).get_at((900, 270)), FPS))
        wait_for(lambda: not v.busy, "the queue to fill again")
    # Each look takes every frame due from the queue (QUEUE_FRAMES of them) and shows the newest.
    assert shown == [3, 7, 11, 15] and QUEUE_FRAMES == 4
    assert (v.counts.shown, v.counts.dropped) == (4, 12)
    assert v.frame_at(0.5) is None                     # frame 16 is not due yet


def test_the_worker_stays_only_a_few_frames_ahead(tmp_path, video):
    v = video(make_clip(tmp_path / "red.mp4", RED, seconds=1.0))
    wait_for(lambda: v.counts.decoded == QUEUE_FRAMES, "the queue to fill")
    time.sleep(0.05)                                   # a worker that does not wait would decode on meanwhile
    assert v.counts.decoded == QUEUE_FRAMES and not v.ended
    v.frame_at(0.0)
    wait_for(lambda: v.counts.decoded == QUEUE_FRAMES + 1, "one more frame")


def test_the_audio_track_is_left_alone(tmp_path, video):
    v = video(make_clip(tmp_path / "talk.mp4", GREEN, seconds=0.5, audio=True))
    wait_for(lambda: v.first_ready, "the first frame")
    while not v.ended:
        v.frame_at(99.0)
        time.sleep(0.002)
    assert v.error is None and v.counts.decoded == 15


@pytest.mark.parametrize("spoil", ["junk", "truncated", "missing"])
def test_a_file_that_will_not_play_says_why_and_never_raises(tmp_path, video, spoil):
    if spoil == "junk":
        path = make_junk(tmp_path / "junk.mp4")
    elif spoil == "truncated":
        path = make_truncated(make_clip(tmp_path / "whole.mp4", RED, seconds=1.0), tmp_path / "half.mp4")
    else:
        path = tmp_path / "gone.mp4"
    v = video(path)
    wait_for(lambda: v.ended, "the worker to give up")
    assert not v.first_ready and v.frame_at(10.0) is None
    assert v.error and ("damaged" in v.error or "cannot be read" in v.error), v.error


def test_close_stops_a_waiting_worker_at_once(tmp_path):
    v = Video(make_clip(tmp_path / "red.mp4", RED, seconds=1.0), BOX).start()
    wait_for(lambda: v.counts.decoded == QUEUE_FRAMES, "the queue to fill")
    v.close()
    assert not v._thread.is_alive() and v.ended
    v.close()                                          # twice is harmless
