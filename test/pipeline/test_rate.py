"""FrameRateSampler: a camera stream thinned to the model's 8 fps by stamp, not by count."""

from __future__ import annotations

import numpy as np
import pytest

from amodal_ros.pipeline.rate import FrameRateSampler

S = 1_000_000_000  # ns
PERIOD = S // 8  # the model's 8 fps


def camera(fps: float, seconds: float = 10.0, start: int = 0) -> list[int]:
    return [start + int(round(i * S / fps)) for i in range(int(seconds * fps))]


def kept(sampler: FrameRateSampler, stamps) -> list[int]:
    return [s for s in stamps if sampler.accept(s)]


def one_per_slot(stamps, start=0) -> bool:
    """Exactly one stamp in each slot [k P - P/4, (k+1) P - P/4) of the 8 fps grid from start."""
    slots = [(s - start + PERIOD // 4) // PERIOD for s in stamps]
    return slots == list(range(len(stamps)))


@pytest.mark.parametrize("fps", [30.0, 100.0, 15.0, 24.0])
def test_faster_camera_is_thinned_to_8_fps_by_stamp(fps):
    out = kept(FrameRateSampler(8.0), camera(fps))
    assert abs(len(out) - 80) <= 1
    spacing = np.diff(out)
    assert abs(spacing.mean() - PERIOD) < 0.02 * PERIOD
    camera_period = S / fps
    assert spacing.min() >= PERIOD - PERIOD / 4 - camera_period
    assert spacing.max() <= PERIOD + camera_period
    assert one_per_slot(out)  # the grid does not drift with the camera rate


def test_8_fps_camera_keeps_every_frame():
    stamps = camera(8.0)
    assert kept(FrameRateSampler(8.0), stamps) == stamps


def test_slower_camera_keeps_every_frame():
    stamps = camera(5.0)
    assert kept(FrameRateSampler(8.0), stamps) == stamps


def test_jitter_does_not_skip_slots():
    rng = np.random.default_rng(0)
    stamps = [s + int(rng.integers(-25, 26)) * 1_000_000 for s in camera(8.0)]
    stamps[0] = 0
    assert kept(FrameRateSampler(8.0), stamps) == stamps


def test_jittery_30_fps_camera_still_gives_8_fps():
    rng = np.random.default_rng(1)
    stamps = [s + int(rng.integers(-5, 6)) * 1_000_000 for s in camera(30.0)]
    stamps[0] = 0
    out = kept(FrameRateSampler(8.0), stamps)
    assert abs(len(out) - 80) <= 1
    assert one_per_slot(out)


def test_lost_camera_frames_do_not_change_the_rate():
    rng = np.random.default_rng(2)
    full = camera(30.0)
    lossy = [full[0]] + [s for s in full[1:] if rng.random() > 0.2]
    a, b = kept(FrameRateSampler(8.0), full), kept(FrameRateSampler(8.0), lossy)
    assert len(a) == 80
    assert 78 <= len(b) <= 80  # a count-based sampler would keep ~20% fewer
    spacing = np.diff(b)
    assert spacing.min() >= PERIOD - PERIOD / 4 - S / 30  # no catch-up bursts after a loss
    assert spacing.max() <= 2 * PERIOD  # nor holes beyond the lost frames'


@pytest.mark.parametrize("fps", [7.0, 7.5, 7.9, 30.0 / 4])
def test_a_camera_at_about_the_model_rate_keeps_every_frame(fps):
    """A frame more than half a period late took the following grid point, up to half a
    period early there, and the camera's next frame then came too early for its own: a 7 fps
    camera kept 6 frames a second, a 30 fps camera sending every 4th frame lost 1 in 8."""
    stamps = camera(fps, seconds=120.0)
    assert kept(FrameRateSampler(8.0), stamps) == stamps


def test_a_camera_a_hair_faster_than_the_model_loses_a_frame_only_when_it_must():
    """8.001 fps against 8: its clock gains a frame on the model's every ~17 minutes; a grid
    snapped ahead lost every other frame for minutes at a time."""
    stamps = camera(8.001, seconds=15 * 60.0)
    assert len(stamps) - len(kept(FrameRateSampler(8.0), stamps)) <= 4


@pytest.mark.parametrize("fps", [8.2, 9.0, 9.5])
def test_a_camera_up_to_a_third_faster_than_the_model_fills_every_slot(fps):
    """A frame a little too early for its slot was refused, the camera's next came more than
    half a period late and restarted the grid: the slot was lost for good (a 9 fps camera gave
    6.75 frames/s, 9.5 fps 6.33, with 220 ms holes); it is taken when the next would be late."""
    out = kept(FrameRateSampler(8.0), camera(fps, seconds=60.0))
    assert len(out) >= 8 * 60 - 1
    assert np.diff(out).max() <= 2 * S / fps + 1  # one camera frame skipped at most


def test_frame_late_for_its_slot_takes_the_next_one():
    sampler = FrameRateSampler(8.0)
    ms = 1_000_000
    # 30 fps; the frames at 100..166 ms were lost, so 200 ms (75 late for the 125 ms point)
    # is nearer the 250 ms point: it takes that one, and 233 ms is not kept 33 ms after it
    assert kept(sampler, [0, 33 * ms, 66 * ms, 200 * ms, 233 * ms, 266 * ms]) == [0, 200 * ms]
    assert sampler.accept(366 * ms)  # the 375 ms point: the grid is where it was


def test_gap_restarts_the_grid_at_the_first_frame_after_it():
    before = camera(30.0, seconds=1.0)
    after = camera(30.0, seconds=1.0, start=3 * S + 13_000_000)
    sampler = FrameRateSampler(8.0)
    out = kept(sampler, before + after)
    resumed = [s for s in out if s >= after[0]]
    assert resumed[0] == after[0]  # kept at once, not waiting for the old grid
    assert one_per_slot(resumed, start=after[0])


def test_stamps_going_back_reset_the_grid():
    sampler = FrameRateSampler(8.0)
    kept(sampler, camera(30.0, seconds=5.0))
    loop = camera(30.0, seconds=1.0)  # a bag loop: stamps start again at 0
    out = kept(sampler, loop)
    assert out[0] == 0
    assert one_per_slot(out)
    assert len(out) == 8


def test_duplicate_stamps_are_rejected_and_counted():
    sampler = FrameRateSampler(8.0)
    assert sampler.accept(5 * S)
    assert not sampler.accept(5 * S)
    assert not sampler.accept(5 * S + PERIOD // 8)  # off the grid: not a repeat
    assert sampler.accept(5 * S + PERIOD)  # and the grid goes on
    assert sampler.repeated == 1  # what diagnostics report (publishers that set no stamps)


def test_reset_accepts_the_next_frame():
    sampler = FrameRateSampler(8.0)
    assert sampler.accept(0)
    assert not sampler.accept(S // 30)
    sampler.reset()
    assert sampler.accept(S // 30)


def test_period_follows_the_rate():
    assert FrameRateSampler(8.0).period_ns == 125_000_000
    assert FrameRateSampler(3.0).period_ns == 333_333_333
    assert FrameRateSampler(6.0).period_ns == 166_666_667  # rounded, not cut


@pytest.mark.parametrize("rate", [0.0, -8.0])
def test_non_positive_rate_is_refused(rate):
    with pytest.raises(ValueError, match="rate"):
        FrameRateSampler(rate)


MS = 1_000_000


@pytest.mark.parametrize(
    "stamps_ms, kept_ms",
    [
        ([0, 50, 93.75], [0, 93.75]),  # exactly a quarter period early: its slot's frame
        ([0, 105, 208.75, 312.5], [0, 105, 312.5]),  # the next exactly half a period late: wait
        ([0, 105, 200, 295], [0, 105, 295]),  # the next 45 ms late, under half a period: wait
    ],
)
def test_the_slack_bounds_are_a_quarter_and_half_a_period(stamps_ms, kept_ms):
    stamps = [round(ms * MS) for ms in stamps_ms]
    assert kept(FrameRateSampler(8.0), stamps) == [round(ms * MS) for ms in kept_ms]
