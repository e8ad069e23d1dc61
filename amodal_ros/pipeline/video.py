"""Overlay videos a person can look at, written while frames stream in (bounded memory)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from amodal_ros.core.staging import remove_dead_partials, stage_name

log = logging.getLogger("amodal_ros.video")

MAX_GIF_FRAMES = 200  # a GIF holds all frames in memory; longer runs get the MP4 only
PACE_FRAMES = 5  # a video paced by its frames' stamps: the median interval of the first ones
DEFAULT_FPS = 8.0  # ... of a video of one frame (no interval)


def video_files(stem: Path) -> tuple[Path, Path]:
    """The MP4 and GIF an OverlayVideo of `stem` writes (a .mp4 / .gif suffix is dropped; a
    stem with a dot of its own, `run.v2`, keeps it)."""
    stem = Path(stem)
    stem = stem.with_suffix("") if stem.suffix in (".mp4", ".gif") else stem
    return stem.with_name(stem.name + ".mp4"), stem.with_name(stem.name + ".gif")


class OverlayVideo:
    """`STEM.mp4` (streamed) and, for short runs, `STEM.gif` of RGB frames.

    Files are written under temporary names and renamed by `close()` once all are written, so
    a failed run never leaves a truncated video, or one video of two, under the final names;
    `abort()` removes them. An earlier run's videos of the same names are set aside by `close()`
    and dropped by `keep()` once everything this run writes is final (a replay's bag, renamed
    after its videos), or put back by `abort()`: a run that fails late loses no earlier output.

    `fps` None: the video plays at its frames' own pace, the median interval of the stamps of
    its first PACE_FRAMES frames (held until then): a replay's frames come at the model's rate,
    or a slower camera's, or one per window.
    """

    def __init__(self, stem: Path, fps: float | None):
        self.mp4, self.gif = video_files(stem)
        self.fps = fps
        self._first: list[tuple[np.ndarray, int]] = []  # frames held until the pace is known
        self.count = 0
        self._writer: cv2.VideoWriter | None = None
        self._gif: list[np.ndarray] | None = []
        # staged as .STEM.mp4.partial-HOST-PID.mp4: OpenCV picks the container by the extension
        self._tmp_mp4 = self.mp4.with_name(f"{stage_name(self.mp4)}.mp4")
        self._tmp_gif = self.gif.with_name(f"{stage_name(self.gif)}.gif")
        for final in (self.mp4, self.gif):  # what a killed writer of them left
            if final.parent.is_dir():
                remove_dead_partials(final.parent, final.name)
        self._written: list[Path] = []
        self._aside: list[tuple[Path, Path]] = []  # (set aside, final): an earlier run's
        self._size = (0, 0)  # (w, h) of the first frame: the video's
        self._resized = False

    def add(self, rgb: np.ndarray, stamp_ns: int = 0) -> None:
        """Append one [H, W, 3] uint8 RGB frame, of `stamp_ns` where the video is paced by
        stamps; frames of another size than the first (a camera that changed its resolution)
        are resized to it: the encoder drops them."""
        if self.fps is None:
            self._first.append((rgb, stamp_ns))
            if len(self._first) == PACE_FRAMES:
                self._pace()
            return
        self._write(rgb)

    def _pace(self) -> None:
        """Set the fps from the held frames' stamps, then write them."""
        stamps = [stamp for _, stamp in self._first]
        gaps = [b - a for a, b in zip(stamps, stamps[1:]) if b > a]
        self.fps = 1e9 / float(np.median(gaps)) if gaps else DEFAULT_FPS
        held, self._first = self._first, []
        for rgb, _ in held:
            self._write(rgb)

    @property
    def _rate(self) -> float:
        """The fps frames are written at (a paced video's is set before its first frame)."""
        return self.fps if self.fps is not None else DEFAULT_FPS

    def _write(self, rgb: np.ndarray) -> None:
        if self._writer is None:
            self.mp4.parent.mkdir(parents=True, exist_ok=True)
            self._size = (rgb.shape[1], rgb.shape[0])  # (w, h)
            fourcc = cv2.VideoWriter.fourcc(*"mp4v")
            even = tuple(n + n % 2 for n in self._size)  # see _even
            self._writer = cv2.VideoWriter(str(self._tmp_mp4), fourcc, self._rate, even)
        if (rgb.shape[1], rgb.shape[0]) != self._size:
            if not self._resized:
                log.warning(
                    "%s: frames of %dx%d after the first %dx%d (HxW) are resized to it",
                    self.mp4,
                    *rgb.shape[:2],
                    *self._size[::-1],
                )
                self._resized = True
            rgb = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA)
        if self._writer.isOpened():
            self._writer.write(cv2.cvtColor(_even(rgb), cv2.COLOR_RGB2BGR))
        if self._gif is not None:
            self._gif.append(rgb)
            if len(self._gif) > MAX_GIF_FRAMES:
                self._gif = None
        self.count += 1

    def close(self) -> list[Path]:
        """Finish, then rename; returns the files written (none when no frame was added)."""
        if self._first:  # fewer frames than PACE_FRAMES
            self._pace()
        staged = []  # (temporary, final)
        if self._writer is not None:
            opened = self._writer.isOpened()
            self._writer.release()
            if opened:
                staged.append((self._tmp_mp4, self.mp4))
            else:
                log.warning("OpenCV has no MP4 encoder here: no %s written", self.mp4)
        if self._gif is None:
            log.warning(
                "%d frames: more than %d, so no GIF (the MP4 has them all)",
                self.count,
                MAX_GIF_FRAMES,
            )
        if self._gif:
            from PIL import Image

            images = [Image.fromarray(f) for f in self._gif]
            images[0].save(
                self._tmp_gif,
                format="GIF",
                save_all=True,
                append_images=images[1:],
                duration=_gif_durations(len(images), self._rate),
                loop=0,
            )
            staged.append((self._tmp_gif, self.gif))
        self._gif = []
        for tmp, final in staged:
            self._set_aside(final)
            os.replace(tmp, final)
            self._written.append(final)
        for earlier in (self.mp4, self.gif):  # an earlier run's, not ours: it would pass for one
            if earlier not in self._written:
                self._set_aside(earlier)
        return list(self._written)

    def _set_aside(self, final: Path) -> None:
        if final.is_file():  # not a folder of that name: the rename over it fails, as it should
            aside = final.with_name(f"{stage_name(final)}.earlier{final.suffix}")
            os.replace(final, aside)
            self._aside.append((aside, final))

    def keep(self) -> None:
        """This run's output is final: drop the earlier run's videos `close` set aside."""
        for aside, _ in self._aside:
            aside.unlink(missing_ok=True)
        self._aside = []

    def abort(self) -> None:
        """Stop and remove the partial files, and the videos `close` wrote (the run they belong
        to failed after all: nothing of it stays under the final names), and put back the
        earlier run's videos."""
        if self._writer is not None:
            self._writer.release()
        for path in (self._tmp_mp4, self._tmp_gif, *self._written):
            path.unlink(missing_ok=True)
        for aside, final in self._aside:
            os.replace(aside, final)
        self._aside = []


def _even(rgb: np.ndarray) -> np.ndarray:
    """The frame with its last row and column repeated where its size is odd: MPEG-4 codes
    even sizes, and OpenCV's writer drops an odd frame's last row and column (an outline at
    the image's right or bottom edge would not be in the video)."""
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else rgb


def _gif_durations(frames: int, fps: float) -> list[int]:
    """Per-frame GIF durations (ms, in the format's 10 ms steps) that add up to the frames'
    true times: at 8 fps one rounded duration played 120 ms frames, 4 % fast."""
    ends = [round((i + 1) * 100 / fps) * 10 for i in range(frames)]
    return [b - a for a, b in zip([0, *ends], ends)]
