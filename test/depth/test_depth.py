"""Depth conditioning: camera depth in m/mm, invalid pixels, normalisation, Depth Anything."""

import numpy as np
import pytest

from amodal_ros.core import CheckpointError, InputError
from amodal_ros.depth import CameraDepth, inverse_depth_from_camera, normalize_window
from amodal_ros.models.registry import depth_model


def metres(t=3, h=20, w=30):
    rng = np.random.default_rng(0)
    return rng.uniform(0.4, 4.0, (t, h, w)).astype(np.float32)


def test_metres_and_millimetres_give_the_same_normalised_conditioning():
    m = np.round(metres(), 3)  # representable in whole millimetres
    mm = np.round(m * 1000).astype(np.uint16)
    a = normalize_window(CameraDepth("32FC1").inverse_depth(m))
    b = normalize_window(CameraDepth("16UC1").inverse_depth(mm))
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a.min() == pytest.approx(-1) and a.max() == pytest.approx(1)


def test_inverse_depth_is_larger_for_nearer_pixels():
    m = np.array([[[1.0, 2.0, 4.0]]], np.float32)
    np.testing.assert_allclose(inverse_depth_from_camera(m, "32FC1")[0, 0], [1.0, 0.5, 0.25])


def test_one_frame_converts_as_a_window_of_one():
    """The public converter also takes a single [H, W] image, as a camera callback holds it."""
    m = metres(1)
    m[0, 2, 2] = np.nan
    single = inverse_depth_from_camera(m[0], "32FC1")
    assert single.shape == m.shape[1:]
    np.testing.assert_array_equal(single, inverse_depth_from_camera(m, "32FC1")[0])


def test_the_window_normalisation_refuses_unfilled_depth_and_a_wrong_shape():
    """NaN would reach the model's input as NaN latents (every mask lost, no error): the
    caller is told to fill invalid pixels first."""
    inv = inverse_depth_from_camera(metres(), "32FC1")
    inv[1, 3, 3] = np.nan
    with pytest.raises(InputError, match="fill invalid pixels first"):
        normalize_window(inv)
    with pytest.raises(InputError, match=r"must be \[T, H, W\]"):
        normalize_window(inv[0])


def test_invalid_pixels_are_filled_from_valid_neighbours_never_nan():
    m = metres()
    m[0, 5:8, 5:8] = np.nan
    m[1, :, :3] = 0.0
    m[1, 10, 10] = -np.inf  # REP 117: nearer than the camera's range
    m[2] = np.nan  # a frame with no valid pixel at all
    inv = inverse_depth_from_camera(m, "32FC1")
    assert np.isfinite(inv).all() and np.isfinite(normalize_window(inv)).all()
    valid = np.isfinite(m) & (m > 0)
    assert inv[0, 6, 6] in set((1.0 / m[0][valid[0]]).astype(np.float32).tolist())
    np.testing.assert_allclose(inv[1, 5, 0], 1.0 / m[1, 5, 3], rtol=1e-6)  # nearest valid column
    assert (inv[2] == inv[valid].min()).all()  # empty frame -> the window's farthest value
    mm = np.zeros((2, 4, 4), np.uint16)
    mm[0, 1, 1] = 1500
    assert np.isfinite(inverse_depth_from_camera(mm, "16UC1")).all()


def test_beyond_the_cameras_range_is_far_not_filled_from_the_object():
    """+inf is REP 117's "nothing within range" (a simulator's sky): it took the nearest
    reading, an object's, so an object before open space made the window flat (input 0)."""
    m = np.full((2, 4, 8), np.inf, np.float32)
    m[:, 1:3, 2:5] = 1.0  # an object at 1 m before open space
    inv = inverse_depth_from_camera(m, "32FC1")
    assert (inv[:, 1:3, 2:5] == 1.0).all() and (inv[:, 0] == 0.0).all()
    model_input = normalize_window(inv)
    assert model_input[0, 1, 3] == 1.0 and model_input[0, 0, 0] == -1.0


def test_a_denormal_depth_is_invalid_not_an_infinite_inverse_depth():
    m = metres(1)
    m[0, 2, 2] = 1e-39  # > 0, but 1 / 1e-39 overflows float32: the window failed before
    inv = inverse_depth_from_camera(m, "32FC1")
    assert np.isfinite(inv).all() and np.isfinite(normalize_window(inv)).all()
    assert inv.max() <= 1 / 0.4 + 1e-4  # filled from its neighbours, 0.4-4 m


def test_a_stray_reading_nearer_than_any_camera_measures_does_not_flatten_the_window():
    """One 5 mm pixel (a glint) was the window's largest inverse depth, and min-max put the
    object and the wall it stands before at -0.995 and -1."""
    mm = np.full((2, 8, 8), 2000, np.uint16)  # a wall at 2 m
    mm[:, 2:5, 2:5] = 1000  # an object at 1 m
    clean = normalize_window(inverse_depth_from_camera(mm, "16UC1"))
    mm[0, 7, 7] = 5
    glint = normalize_window(inverse_depth_from_camera(mm, "16UC1"))
    assert glint[0, 3, 3] == clean[0, 3, 3] == 1.0 and glint[0, 0, 0] == clean[0, 0, 0] == -1.0


def test_unusable_depth_gets_clear_errors():
    with pytest.raises(InputError, match="no valid pixel"):
        inverse_depth_from_camera(np.zeros((2, 4, 4), np.uint16), "16UC1")
    with pytest.raises(InputError, match="not supported"):
        inverse_depth_from_camera(metres(), "8UC1")
    with pytest.raises(ValueError, match="encoding"):
        CameraDepth("rgb8")
    with pytest.raises(InputError, match=r"\[T, H, W\]"):
        normalize_window(np.ones((4, 4)))


def test_window_normalisation_uses_one_range_for_all_frames():
    x = np.stack([np.full((2, 2), 1.0), np.full((2, 2), 3.0)]).astype(np.float32)
    out = normalize_window(x)
    assert out[0].max() == -1 and out[1].min() == 1  # not per frame
    assert (normalize_window(np.ones((2, 3, 3))) == 0).all()


@pytest.fixture(scope="module")
def depth_anything_folder(tmp_path_factory):
    pytest.importorskip("torch")
    from amodal_ros.models.architectures import build_depth_anything

    folder = tmp_path_factory.mktemp("da2") / "tiny-depth-anything"
    build_depth_anything("tiny", seed=0).save_pretrained(folder, safe_serialization=True)
    return folder


def test_depth_anything_from_a_local_folder(depth_anything_folder):
    from amodal_ros.depth.depth_anything import DepthAnythingDepth

    model = depth_model(str(depth_anything_folder))  # the registry loads, the estimator wraps
    estimator = DepthAnythingDepth(model, input_size=56, batch=2)
    assert estimator.input_shape(48, 64) == (56, 70)  # shorter side 56, multiples of 14
    rgb = np.random.default_rng(0).integers(0, 255, (3, 48, 64, 3), dtype=np.uint8)
    inv = estimator.inverse_depth(rgb)
    assert inv.shape == (3, 48, 64) and inv.dtype == np.float32 and np.isfinite(inv).all()
    np.testing.assert_allclose(
        estimator.inverse_depth(rgb[1:2])[0], inv[1], atol=1e-4
    )  # per frame
    with pytest.raises(InputError, match="uint8 RGB"):
        estimator.inverse_depth(rgb.astype(np.float32))


def test_a_metric_depth_anything_and_a_random_one_are_named(tmp_path, caplog):
    """A Metric-Indoor/Outdoor folder loads like the relative ones but gives metres (larger =
    farther), which the model would take for inverse depth, upside down; 'vitl' (the
    reference's --depth_encoder name) is an untrained model here."""
    from amodal_ros.models.architectures import build_depth_anything

    model = build_depth_anything("tiny", seed=0)
    model.config.depth_estimation_type = "metric"
    model.save_pretrained(tmp_path / "metric", safe_serialization=True)
    with pytest.raises(CheckpointError, match="is a metric Depth Anything .* use a relative"):
        depth_model(str(tmp_path / "metric"))
    with caplog.at_level("WARNING", logger="amodal_ros.models"):
        depth_model("vits")
    assert "'vits' is an untrained Depth Anything V2 (random weights" in caplog.text


def test_depth_anything_folder_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not a Depth Anything V2 folder"):
        depth_model(str(tmp_path))
    # a mistyped path is named as missing, not as a folder of the wrong kind
    with pytest.raises(CheckpointError, match=r"depth model .*/nowhere does not exist"):
        depth_model(str(tmp_path / "nowhere"))
