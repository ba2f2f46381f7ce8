"""The promotional videos' sound: a mixer channel of its own, fed from the playing Video a little ahead.

Muted unless ``[screen] video_volume`` is above 0. The voice prompts play on the mixer's other channels, so
a prompt is never cut short by a video. Without an audio device the videos play silent; nothing here raises.
"""

from __future__ import annotations

import logging

import pygame

from kiosk.ui.video import Video

LOGGER = logging.getLogger(__name__)

CHUNK_S = 0.2          # sound handed to the mixer at a time; one plays while the next waits queued behind it
CHANNEL = 0            # reserved for the videos: Sound.play() (the voice prompts) never picks it


class Speaker:
    """``feed(video)`` from the screen's thread whenever it shows ``video``'s frames; ``pause()`` when the
    picture stops; ``stop()`` when the video leaves the screen."""

    def __init__(self, volume: float) -> None:
        self.volume = volume
        self.format: tuple[int, int] | None = None      # (rate, channels) Video should decode to
        self._channel: pygame.mixer.Channel | None = None
        self._video: Video | None = None
        self._paused = False
        self._chunk = 0
        self._started = False                  # the current video's sound has begun
        self.gaps = 0                          # times a video's sound ran dry while it played (the screen stalled)
        try:
            if not pygame.mixer.get_init():
                pygame.mixer.init()
            rate, size, channels = pygame.mixer.get_init()
            if size != -16 or channels not in (1, 2):
                raise pygame.error(f"the mixer runs {size}-bit with {channels} channels; 16-bit mono or stereo "
                                   "is needed")
            pygame.mixer.set_reserved(CHANNEL + 1)
            self._channel = pygame.mixer.Channel(CHANNEL)
            self._channel.set_volume(volume)
            self.format = (rate, channels)
            self._chunk = int(rate * CHUNK_S) * 2 * channels
        except pygame.error as exc:
            LOGGER.warning("video sound is on (video_volume %.2f) but there is no usable audio device (%s): the "
                           "videos play silent", volume, exc)

    @property
    def available(self) -> bool:
        return self._channel is not None

    def feed(self, video: Video) -> None:
        """Keep ``video``'s sound playing: one chunk on the channel and the next queued behind it."""
        channel = self._channel
        if channel is None:
            return
        try:
            if video is not self._video:
                channel.stop()
                self._video, self._started = video, False
            if self._paused:
                channel.unpause()
                self._paused = False
            while channel.get_queue() is None:
                if video.sounding and video.sound_ready < self._chunk:
                    return                    # a whole chunk at a time, but for the end of the track
                pcm = video.take_sound(self._chunk)
                if not pcm:
                    return
                sound = pygame.mixer.Sound(buffer=pcm)
                if channel.get_busy():
                    channel.queue(sound)
                else:
                    self.gaps += self._started
                    self._started = True
                    channel.play(sound)
        except pygame.error as exc:       # the device went away: the picture plays on, silent
            LOGGER.warning("video sound stopped: %s; the videos play silent from now on", exc)
            self._channel = None

    def pause(self) -> None:
        """The picture stands still (another screen is up, or the screen is off): so does the sound."""
        if self._channel is not None and not self._paused:
            self._channel.pause()
            self._paused = True

    def stop(self, video: Video | None = None) -> None:
        """Silence, and forget the video (only if it is ``video``, when given)."""
        if video is not None and video is not self._video:
            return
        self._video = None
        if self._channel is not None:
            try:
                self._channel.stop()
            except pygame.error:
                pass

    @property
    def playing(self) -> bool:
        """Sound is coming out of the channel now."""
        return self._channel is not None and not self._paused and bool(self._channel.get_busy())
