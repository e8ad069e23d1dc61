"""Overlay videos are named after the stem the user gave."""

from __future__ import annotations

import numpy as np
import pytest

from amodal_ros.pipeline.video import OverlayVideo


def _write(stem) -> list[str]:
    video = OverlayVideo(stem, fps=8.0)
    for value in (0, 128, 255):
        video.add(np.full((16, 16, 3), value, np.uint8))
    return sorted(p.name for p in video.close())


def test_a_stem_with_a_dot_of_its_own_keeps_it(tmp_path):
    written = _write(tmp_path / "run.v2")
    assert "run.v2.gif" in written and set(written) <= {"run.v2.gif", "run.v2.mp4"}
    assert sorted(p.name for p in tmp_path.iterdir()) == written  # nothing partial is left


def test_a_video_suffix_given_as_the_stem_is_not_doubled(tmp_path):
    written = _write(tmp_path / "ov.mp4")
    assert "ov.gif" in written and set(written) <= {"ov.gif", "ov.mp4"}
    assert _write(tmp_path / "gif" / "ov.gif") == written  # either suffix


def test_a_gif_that_cannot_be_written_leaves_no_video_at_all(tmp_path):
    """The GIF is written after the MP4: when it fails (here: its name is taken by a folder),
    the MP4 is not renamed either, and abort leaves the folder as it was."""
    (tmp_path / "run.gif").mkdir()
    video = OverlayVideo(tmp_path / "run", fps=8.0)
    for value in (0, 255):
        video.add(np.full((16, 16, 3), value, np.uint8))
    with pytest.raises(OSError, match="run.gif"):
        video.close()
    video.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["run.gif"]


def test_abort_after_close_removes_the_videos_of_the_failed_run(tmp_path):
    video = OverlayVideo(tmp_path / "run", fps=8.0)
    video.add(np.zeros((16, 16, 3), np.uint8))
    assert video.close()
    video.abort()  # e.g. the bag they belong to could not be finished
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_fails_after_its_videos_gives_back_the_earlier_runs(tmp_path):
    """`replay --overwrite --video` renames its videos before its bag; a bag that then fails
    to close (disk full, Ctrl-C) deleted the new videos after they had replaced the earlier
    run's: the earlier bag stayed, its videos were gone. They are set aside until `keep`."""
    mp4, gif = tmp_path / "run.mp4", tmp_path / "run.gif"
    mp4.write_bytes(b"earlier mp4")
    gif.write_bytes(b"earlier gif")
    video = OverlayVideo(tmp_path / "run", fps=8.0)
    video.add(np.zeros((16, 16, 3), np.uint8))
    assert video.close()
    assert gif.read_bytes() != b"earlier gif"  # this run's, while its bag is written
    video.abort()
    assert mp4.read_bytes() == b"earlier mp4" and gif.read_bytes() == b"earlier gif"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.gif", "run.mp4"]

    again = OverlayVideo(tmp_path / "run", fps=8.0)
    again.add(np.zeros((16, 16, 3), np.uint8))
    again.close()
    again.keep()  # the run is whole: the earlier videos go
    assert gif.read_bytes() != b"earlier gif"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.gif", "run.mp4"]


def test_a_long_run_leaves_no_gif_of_an_earlier_run_beside_its_mp4(tmp_path, monkeypatch):
    """Over MAX_GIF_FRAMES there is no GIF: an earlier run's GIF of the same name would pass
    for this run's, so it goes."""
    from amodal_ros.pipeline import video as video_module

    assert "run.gif" in _write(tmp_path / "run")
    monkeypatch.setattr(video_module, "MAX_GIF_FRAMES", 3)
    assert "run.gif" in _write(tmp_path / "run")  # 3 frames: the most a GIF takes
    monkeypatch.setattr(video_module, "MAX_GIF_FRAMES", 2)
    written = _write(tmp_path / "run")  # 3 frames: over the limit
    assert "run.gif" not in written and not (tmp_path / "run.gif").exists()


def test_frames_after_a_resolution_change_are_kept_at_the_videos_size(tmp_path, caplog):
    """The stream answers a camera that changes its resolution; the encoder dropped every
    frame after the change, with no word but OpenCV's."""
    import cv2
    from PIL import Image

    video = OverlayVideo(tmp_path / "run", fps=8.0)
    for i, shape in enumerate([(32, 64, 3)] * 3 + [(48, 48, 3)] * 3):
        video.add(np.full(shape, 40 * i, np.uint8))  # all different: a GIF merges repeats
    with caplog.at_level("WARNING", logger="amodal_ros.video"):
        written = {p.suffix: p for p in video.close()}
    assert "frames of 48x48 after the first 32x64 (HxW) are resized to it" in caplog.text
    assert caplog.text.count("are resized to it") == 1  # said once, not per frame
    with Image.open(written[".gif"]) as gif:
        assert gif.n_frames == 6 and gif.size == (64, 32)
    if ".mp4" in written:  # OpenCV builds without an MP4 encoder write the GIF alone
        capture = cv2.VideoCapture(str(written[".mp4"]))
        assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
        capture.release()


def test_an_odd_sized_frame_keeps_its_last_row_and_column_and_the_gif_its_pace(tmp_path):
    """MPEG-4 codes even sizes: OpenCV dropped an odd frame's last row and column (an outline
    at the right or bottom edge was not in the video). A GIF's 10 ms steps played 8 fps at
    120 ms a frame, 4 % fast; its durations now add up to the frames' times."""
    import cv2
    from PIL import Image

    video = OverlayVideo(tmp_path / "odd", fps=8.0)
    for i in range(8):
        frame = np.full((121, 161, 3), 20 * i, np.uint8)
        frame[:, -1] = (255, 0, 0)  # the right column red, the bottom row blue
        frame[-1, :] = (0, 0, 255)
        video.add(frame)
    written = {p.suffix: p for p in video.close()}
    with Image.open(written[".gif"]) as gif:
        durations = []
        for k in range(gif.n_frames):
            gif.seek(k)
            durations.append(gif.info["duration"])
    assert sum(durations) == 1000 and set(durations) == {120, 130}
    if ".mp4" in written:  # OpenCV builds without an MP4 encoder write the GIF alone
        capture = cv2.VideoCapture(str(written[".mp4"]))
        ok, bgr = capture.read()
        capture.release()
        assert ok and bgr.shape[:2] == (122, 162)
        assert bgr[60, 160, 2] > 200 and bgr[60, 160, 0] < 60  # the red column survives
        assert bgr[120, 80, 0] > 200 and bgr[120, 80, 2] < 60  # and the blue row


def test_a_video_paced_by_its_frames_stamps_plays_at_their_rate(tmp_path):
    """A replay's frames come at the model's rate, a slower camera's, or one per window:
    without an fps the video takes the median interval of its first frames' stamps."""
    from PIL import Image

    video = OverlayVideo(tmp_path / "paced", fps=None)
    for i in range(8):  # 4 fps, one stamp a little late
        video.add(
            np.full((16, 16, 3), 30 * i, np.uint8), 250_000_000 * i + (9_000_000 if i == 2 else 0)
        )
    written = {p.suffix: p for p in video.close()}
    assert video.fps == pytest.approx(4.0)
    with Image.open(written[".gif"]) as gif:
        assert gif.n_frames == 8 and gif.info["duration"] == 250
    short = OverlayVideo(tmp_path / "one", fps=None)  # a single frame: no interval to go by
    short.add(np.zeros((16, 16, 3), np.uint8), 5)
    assert len(short.close()) >= 1 and short.fps == 8.0


def test_the_pace_is_the_median_step_forward_of_the_first_frames(tmp_path):
    """Frames answered twice at one stamp and a dropout do not set the pace: the median of
    the steps forward over the first PACE_FRAMES frames does, known once they are in."""
    from amodal_ros.pipeline.video import PACE_FRAMES

    video = OverlayVideo(tmp_path / "paced", fps=None)
    stamps = [0, 0, 125, 125, 250, 2250]  # ms: a repeat, a repeat, then a 2 s dropout
    for i, ms in enumerate(stamps[:PACE_FRAMES]):
        assert video.fps is None, i
        video.add(np.full((16, 16, 3), 30 * i, np.uint8), ms * 1_000_000)
    assert video.fps == pytest.approx(8.0)  # steps 125, 125 ms (not the repeats' 0)
    video.close()
    dropout = OverlayVideo(tmp_path / "dropout", fps=None)
    for i, ms in enumerate([0, 125, 250, 375, 2375]):
        dropout.add(np.full((16, 16, 3), 30 * i, np.uint8), ms * 1_000_000)
    assert dropout.fps == pytest.approx(8.0)  # the median, not the mean the dropout drags
    dropout.close()
