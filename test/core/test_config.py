"""The typed configs' rules, each at its edge: ranges, the coercions YAML needs, the student's
limits, and the texts tools take (FIELD=VALUE settings, sizes, parameter names)."""

from __future__ import annotations

import pytest

from amodal_ros.core.config import (
    InferenceConfig,
    StreamConfig,
    image_size,
    model_settings,
    range_error,
    unknown_parameters,
    working_size,
)


def test_a_range_holds_its_ends_and_names_the_side_a_value_left():
    assert range_error("stride", 1000, (1, 1000)) is None
    assert range_error("stride", 1, (1, 1000)) is None
    assert range_error("stride", 1001, (1, 1000)) == "stride must be in [1, 1000], got 1001"
    assert range_error("seed", -1, (0, None)) == "seed must be >= 0, got -1"
    assert range_error("gap", 2.5, (None, 2)) == "gap must be <= 2, got 2.5"
    assert range_error("gap", float("nan"), (None, None)) == "gap must be a finite number, got nan"
    assert InferenceConfig(num_steps=1000).num_steps == 1000  # the declared end itself


def test_numbers_are_read_as_yaml_and_ros_give_them():
    # YAML 1.1 reads 1e-4 (no dot) as text, a ROS parameter file 2 as an integer
    assert InferenceConfig(noise_aug_strength="1e-4").noise_aug_strength == 1e-4
    assert isinstance(InferenceConfig(min_guidance=2).min_guidance, float)
    with pytest.raises(ValueError, match=r"num_steps must be int, got True \(bool\)"):
        InferenceConfig(num_steps=True)  # a bool is an int to Python, not to a user
    with pytest.raises(ValueError, match="noise_aug_strength must be float, got True"):
        InferenceConfig(noise_aug_strength=True)


def test_a_student_runs_without_guidance_even_at_one_end_of_the_ramp():
    InferenceConfig(student=True, num_steps=2, min_guidance=1.0, max_guidance=1.0)
    for low, high in ((1.5, 1.0), (1.0, 1.5)):
        config = InferenceConfig(num_steps=2, min_guidance=low, max_guidance=high)
        assert config.uses_guidance  # either end above 1 runs the guided branch
        with pytest.raises(ValueError, match="without guidance"):
            config.replace(student=True)


def test_objects_per_call_is_one_on_a_cpu_and_four_on_a_gpu_unless_set():
    assert InferenceConfig(device="cpu").objects_per_call == 1
    assert InferenceConfig(device="cuda").objects_per_call == 4
    assert InferenceConfig(device="cpu", max_batch_objects=3).objects_per_call == 3


def test_exact_sync_allows_no_stamp_difference_whatever_the_tolerance():
    assert StreamConfig(sync_mode="exact", sync_tolerance=0.02).tolerance_ns == 0
    assert StreamConfig(sync_mode="approximate", sync_tolerance=0.02).tolerance_ns == 20_000_000


def test_unknown_parameters_are_named_with_the_closest_known_one():
    assert unknown_parameters(["stride", "use_sim_time", "start_type_description_service"]) == []
    assert unknown_parameters(["strde", "zzz"]) == ["strde (did you mean stride?)", "zzz"]
    [qos] = unknown_parameters(["qos_overrides./image.subscription.reliability"])
    assert "input_reliability, output_reliability and queue_depth" in qos


@pytest.mark.parametrize("text", ["480", "480x640x3", "0x640", "480x-640", "axb", ""])
def test_an_image_size_is_two_positive_whole_numbers(text):
    with pytest.raises(ValueError, match="camera_size must be HxW in pixels"):
        image_size(text, "camera_size")


def test_image_and_working_sizes():
    assert image_size("480X640", "camera_size") == (480, 640)
    assert working_size("16x24") == {"height": 16, "width": 24}
    assert working_size("") == {}
    for text in ("8x16", "16x8", "20x32", "abc"):
        with pytest.raises(ValueError, match="multiples of 8 from 16"):
            working_size(text)


def test_model_settings_take_field_value_texts_of_the_fields_a_model_decides():
    assert model_settings(["height=64", "initial_noise=zeros"]) == {
        "height": 64,
        "initial_noise": "zeros",
    }
    assert model_settings({"rgb_sum_threshold": "300"}) == {"rgb_sum_threshold": 300}
    wrong = {
        "initial_noise": "give FIELD=VALUE",
        "num_steps=4": "'num_steps' is not a field this sets: choose from height",
        "height=tall": "height takes a whole number",
        "initial_noise=purple": "initial_noise must be one of",  # refused by its field
        "height=12": "height must be a multiple of 8",
    }
    for text, said in wrong.items():
        with pytest.raises(ValueError, match=said):
            model_settings([text])
    with pytest.raises(ValueError, match=r"'height' is not a field this sets \(it has an option"):
        model_settings(["height=64"], leave_out=("height",))
