"""Typed configs. Flat scalar fields with help text and ranges, so the ROS node declares its
parameters by iterating them; InferenceConfig defaults are the published Diffusion-VAS values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

CONDITIONING_MODES = ("consistent", "reference")
AUTO = "auto"  # a model-dependent field left to the model's own default
DTYPES = ("float32", "float16", "bfloat16")
SYNC_MODES = ("approximate", "exact")
PUBLISH_POLICIES = ("latest", "new")
DEPTH_SOURCES = ("auto", "camera", "model", "none")
QOS_RELIABILITY = ("best_effort", "reliable")
INPUT_RELIABILITY = ("auto", *QOS_RELIABILITY)
UNET_BACKENDS = ("auto", "eager", "compile", "onnxruntime", "tensorrt")
QUANTIZE = ("", "fp8")
DEPTH_BACKENDS = ("auto", "eager", "compile", "onnxruntime", "tensorrt")
# Named speed/quality trade-offs, measured with the embedded model on 30 held-out synthetic
# clips (docs/speed.md, "Presets: fewer steps, guidance on or off"): mIoU_occ 39.96
# (quality), 40.41 (balanced, 3.1x fewer UNet evaluations), 38.88 (fast, 12.5x fewer).
# Warm start lost quality in every setting measured, so no preset uses it. `realtime` runs
# the checkpoints' distilled students (`amodal-ros distill`) in one UNet evaluation per view
# and stage. A preset overrides these fields.
PRESETS = {
    "quality": {
        "num_steps": 25,
        "min_guidance": 1.5,
        "max_guidance": 1.5,
        "warm_start": 0.0,
        "student": False,
    },
    "balanced": {
        "num_steps": 8,
        "min_guidance": 1.5,
        "max_guidance": 1.5,
        "warm_start": 0.0,
        "student": False,
    },
    "fast": {
        "num_steps": 4,
        "min_guidance": 1.0,
        "max_guidance": 1.0,
        "warm_start": 0.0,
        "student": False,
    },
    "realtime": {
        "num_steps": 1,
        "min_guidance": 1.0,
        "max_guidance": 1.0,
        "warm_start": 0.0,
        "student": True,
    },
}
STUDENT_MAX_STEPS = 2  # a distilled student samples in 1 or 2 UNet evaluations (train/distill.py)


MASK_RESIZES = ("nearest", "area")
MASK_UPSAMPLES = ("nearest", "smooth")
ENSEMBLE_CHOICES = ("off", "on")
INITIAL_NOISES = ("gaussian", "zeros")
# What a checkpoint without our metadata (the published Diffusion-VAS folders) is run with:
# the published working size, and the authors' inference path (diffusion-vas), which produced
# the paper's numbers: 'reference' conditioning, binary masks in, R+G+B > 600 at the working
# size, resized to the camera's size by nearest neighbour. Models trained here record their own
# defaults in their folder (models/layout.py).
PUBLISHED_DEFAULTS = {
    "height": 256,
    "width": 512,
    "conditioning_mode": "reference",
    "mask_resize": "nearest",
    "mask_upsample": "nearest",
    "rgb_sum_threshold": 600,
    "mirror_ensemble": "off",
    "reverse_ensemble": "off",
    "initial_noise": "gaussian",
}
# The fields a model decides when they are left at these values (InferenceConfig.for_model).
MODEL_FIELDS = {
    "height": 0,
    "width": 0,
    "conditioning_mode": AUTO,
    "mask_resize": AUTO,
    "mask_upsample": AUTO,
    "rgb_sum_threshold": -1,
    "mirror_ensemble": AUTO,
    "reverse_ensemble": AUTO,
    "initial_noise": AUTO,
}


def model_settings(
    given: Mapping[str, object] | Sequence[str], leave_out: tuple[str, ...] = ()
) -> dict[str, str | int]:
    """{field: value} a tool runs a model with over its defaults, from {field: value} or
    FIELD=VALUE texts: fields a model decides (MODEL_FIELDS but `leave_out`, which the tool
    sets its own way), each value of its field's type and one the field takes.

    Raises:
        ValueError: saying which text, field or value is wrong, and what it may be.
    """
    if not isinstance(given, Mapping):
        for text in given:
            if "=" not in text:
                raise ValueError(f"{text!r}: give FIELD=VALUE, e.g. initial_noise=zeros")
        given = dict(text.partition("=")[::2] for text in given)
    choosable = [k for k in MODEL_FIELDS if k not in leave_out]
    settings: dict[str, str | int] = {}
    for key, value in given.items():
        if key not in choosable:
            own = " (it has an option of its own)" if key in leave_out else ""
            raise ValueError(
                f"{key!r} is not a field this sets{own}: choose from {', '.join(choosable)}"
            )
        if not isinstance(MODEL_FIELDS[key], int):
            settings[key] = str(value)
            continue
        try:
            settings[key] = int(str(value))
        except ValueError:
            raise ValueError(f"{key}={value!r}: {key} takes a whole number") from None
    checked: dict[str, Any] = settings  # each value of its field's type, by now
    InferenceConfig(**checked)  # a value the field refuses is refused here, by name
    return settings


# The model the command-line tools run when no checkpoint is given (models/registry.py).
OFFLINE_DEFAULT_CHECKPOINT = "embedded"


def param(
    default,
    help: str,
    low=None,
    high=None,
    choices=None,
    flags: tuple[str, ...] = (),
    positional: bool = False,
) -> Any:
    """A dataclass field that carries its description, range and choices: the node declares it
    as a ROS parameter and the command line as `--field-name` (plus the short `flags`), or as a
    positional argument. `default` MISSING makes it required."""
    meta = {
        "help": help,
        "range": (low, high),
        "choices": choices,
        "flags": flags,
        "positional": positional,
    }
    return field(default=default, metadata=meta)


def group(factory, only: tuple[str, ...] = (), exclude: tuple[str, ...] = ()) -> Any:
    """A command's field holding a whole config: its fields become the command's options
    (`only` those, or all but `exclude`), on top of the config `factory` returns."""
    return field(
        default_factory=factory, metadata={"group": True, "only": only, "exclude": exclude}
    )


def overrides(config_cls, only: tuple[str, ...]) -> Any:
    """A command's field holding {field: value} of the `only` fields of `config_cls` given on
    the command line (as options of those names), to apply over settings read elsewhere."""
    meta = {"group": True, "overrides": config_cls, "only": only, "exclude": ()}
    return field(default_factory=dict, metadata=meta)


def _as_float(value: int | str) -> float | str:
    """A number as a float; text that is no number stays text (and is named as wrong)."""
    try:
        return float(value)
    except ValueError:
        return value


# The whole numbers a setting takes where its range is open: the node declares an open-ended
# integer parameter with int32's bounds (ros/params.py), and the command line takes no more
# (`--num-frames 1e23` ended in an OverflowError traceback, `--decode-chunk-size` in a
# failed window)
INT_RANGE = (-(2**31), 2**31 - 1)
# The largest side of a generated scene's images, pixels (a 4K camera's fits): synth and
# demo-bag took any, and 100000 ended in OpenCV's out-of-memory traceback
MAX_IMAGE_SIDE = 4096


def range_error(name: str, value, bounds: tuple) -> str | None:
    """Why `value` lies outside the declared (low, high) `bounds` (None: open, for a whole
    number INT_RANGE's end), or None; a NaN lies outside every range (it compares False with
    both ends)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    low, high = bounds
    if low is not None and value < low or high is not None and value > high:
        if low is None or high is None:
            return f"{name} must be {f'<= {high}' if low is None else f'>= {low}'}, got {value!r}"
        return f"{name} must be in [{low}, {high}], got {value!r}"
    if isinstance(value, int) and not isinstance(value, bool):
        low = INT_RANGE[0] if low is None else low
        high = INT_RANGE[1] if high is None else high
        if not low <= value <= high:
            return f"{name} must be in [{low}, {high}], got {value!r}"
    return None


def accepts_bool(metadata: Mapping) -> bool:
    """Whether a text field takes 'off'/'on', which YAML reads unquoted as false/true."""
    return set(ENSEMBLE_CHOICES) <= set(metadata.get("choices") or ())


def check_fields(config) -> None:
    """Validate every field against its declared type, range and choices; names the field."""
    for f in fields(config):
        value = getattr(config, f.name)
        expected = type(f.default) if f.default is not MISSING else None
        if expected is str and isinstance(value, bool) and accepts_bool(f.metadata):
            value = "on" if value else "off"  # YAML and ROS parameter files read on/off
            setattr(config, f.name, value)  # unquoted as booleans
        if expected is float and isinstance(value, (int, str)) and not isinstance(value, bool):
            value = _as_float(value)  # YAML 1.1 reads 1e-4 (no dot) as text
            setattr(config, f.name, value)
        if (
            expected is not None
            and not isinstance(value, expected)
            or (expected is int and isinstance(value, bool))
        ):
            raise ValueError(
                f"{f.name} must be {expected.__name__}, got {value!r} ({type(value).__name__})"
            )
        why = range_error(f.name, value, f.metadata.get("range", (None, None)))
        if why:
            raise ValueError(why)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ValueError(f"{f.name} must be one of {choices}, got {value!r}")


@dataclass
class Config:
    """Base of the typed configs: validated copies and field names."""

    def replace(self, **changes):
        """A validated copy with some fields changed."""
        return type(self)(**{**asdict(self), **changes})

    @classmethod
    def field_names(cls) -> list[str]:
        """The config's field names, in order."""
        return [f.name for f in fields(cls)]


@dataclass
class InferenceConfig(Config):
    """How one window is sampled.

    The MODEL_FIELDS (working size, conditioning mode, mask resizing, threshold and the
    mirror and reverse ensembles) default to the model's own values (`for_model`): a model
    trained here records them in its folder; a published checkpoint runs as the authors' code
    does (PUBLISHED_DEFAULTS).

    `conditioning_mode`:
      - "consistent": as the model was trained; every frame's cross-attention sees the
        window's per-frame CLIP embeddings, the unconditional branch gets zeros, correctly paired,
        and the fps time id is `fps`. The default of models trained here.
      - "reference": reproduces the reference inference (Kaihua-Chen/diffusion-vas demo) exactly:
        one token per frame, its scrambled guidance pairing and the fps - 1 time id. The default
        of published checkpoints: the authors' inference path produced the paper's numbers.
    """

    height: int = param(
        0,
        "model working height, pixels (multiple of 8); 0 = the model's (published 256)",
        0,
        MAX_IMAGE_SIDE,
    )
    width: int = param(
        0,
        "model working width, pixels (multiple of 8); 0 = the model's (published 512)",
        0,
        MAX_IMAGE_SIDE,
    )
    num_frames: int = param(25, "window length in frames (the model was trained on 25)", 1)
    num_steps: int = param(25, "Euler (EDM) sampling steps", 1, 1000, flags=("--steps",))
    min_guidance: float = param(1.5, "classifier-free guidance at the first frame", 0.0, 100.0)
    max_guidance: float = param(
        1.5,
        "guidance at the last frame (ramped linearly); guidance is off (one UNet branch) only "
        "when both ends are <= 1",
        0.0,
        100.0,
    )
    conditioning_mode: str = param(
        AUTO,
        "'consistent' (as trained), 'reference' (the authors' demo) or 'auto' (the model's: "
        "reference for published checkpoints, consistent for models trained here)",
        None,
        None,
        (AUTO, *CONDITIONING_MODES),
        flags=("--mode",),
    )
    fps: int = param(8, "fps time id the model was trained with (reference mode passes fps-1)", 1)
    motion_bucket_id: int = param(127, "SVD motion bucket time id", 0, 1023)
    noise_aug_strength: float = param(
        0.02, "sigma of noise added to the conditioning pixels", 0.0, 10.0
    )
    decode_chunk_size: int = param(8, "frames per temporal-VAE decode call", 1)
    rgb_sum_threshold: int = param(
        -1,
        "amodal where R+G+B (0..765) of the decoded frame exceeds this; -1 = the model's "
        "(published 600)",
        -1,
        764,
    )
    mask_resize: str = param(
        AUTO,
        "masks to the working size: 'nearest' (binary, the reference) or 'area' (soft edges: "
        "the share of each working pixel the mask covers); 'auto' = the model's",
        None,
        None,
        (AUTO, *MASK_RESIZES),
    )
    mask_upsample: str = param(
        AUTO,
        "masks back to the camera's size: 'nearest' (threshold at the working size, then "
        "resize: the reference) or 'smooth' (resize the score bilinearly, then threshold); "
        "'auto' = the model's",
        None,
        None,
        (AUTO, *MASK_UPSAMPLES),
    )
    mirror_ensemble: str = param(
        AUTO,
        "stage 1 also runs each window mirrored left-right and averages the two scores before "
        "the threshold ('on': twice stage 1's UNet and decoder work; 'off'); 'auto' = the "
        "model's (chosen on validation clips)",
        None,
        None,
        (AUTO, *ENSEMBLE_CHOICES),
    )
    reverse_ensemble: str = param(
        AUTO,
        "stage 1 also runs each window reversed in time (with mirror_ensemble, both ways "
        "mirrored too) and averages the scores before the threshold ('on': twice stage 1's "
        "UNet and decoder work; 'off'); 'auto' = the model's (chosen on validation clips)",
        None,
        None,
        (AUTO, *ENSEMBLE_CHOICES),
    )
    initial_noise: str = param(
        AUTO,
        "what sampling starts from: 'gaussian' (seeded unit noise, a diffusion model's) or "
        "'zeros' (the noise's mean: a deterministic one-step student trained from it, "
        "distill --initial-noise zeros); 'auto' = the model's",
        None,
        None,
        (AUTO, *INITIAL_NOISES),
    )
    max_batch_objects: int = param(
        0,
        "objects per batched UNet call; 0 = auto: 4 on a GPU, 1 on a CPU (where batching "
        "measured 6-19 % slower per step)",
        0,
    )
    num_samples: int = param(
        1, "hypotheses per object (Top-k); >1 gives uncertainty", 1, flags=("--samples",)
    )
    # any 63-bit seed: distillation seeds each teacher window with a hash (stable_seed)
    seed: int = param(23, "noise seed (the reference demo's), per object and sample", 0, 2**63 - 1)
    device: str = param("cpu", "torch device: cpu, cuda, cuda:1, ...")
    dtype: str = param("float32", "UNet dtype", None, None, DTYPES)
    quantize: str = param(
        "",
        "'fp8': the UNet's linear layers in float8 through torchao (fp8 matmuls on Hopper/Ada "
        "GPUs; elsewhere fp8-stored weights, to measure the quality); '' = off",
        None,
        None,
        QUANTIZE,
    )
    student: bool = param(
        False,
        "run the checkpoints' distilled students (amodal-ros distill; 1 or 2 steps, no "
        "guidance), both stages: 'embedded' selects the shipped ones, a folder must be one",
    )
    preset: str = param(
        "",
        "'quality', 'balanced', 'fast' or 'realtime' (the distilled student, one step: the "
        "choice on a GPU) sets num_steps, guidance, warm_start and student (other values of "
        "them beside it are refused); empty = use those fields as given",
        None,
        None,
        ("", *PRESETS),
    )
    warm_start: float = param(
        0.0,
        "sliding windows: start from the previous window's result re-noised, running only this "
        "share of num_steps (0 = cold start from noise)",
        0.0,
        1.0,
    )
    unet_backend: str = param(
        "auto",
        "UNet runtime: eager, compile (torch.compile), onnxruntime, tensorrt, or auto (on a GPU "
        "TensorRT where it and onnx are installed, not yet run on a GPU here; else eager)",
        None,
        None,
        UNET_BACKENDS,
    )
    engine_cache: str = param(
        "",
        "folder of ONNX exports and TensorRT engines; empty = $AMODAL_ROS_ENGINE_CACHE if set, "
        "else ~/.cache/amodal_ros/engines",
    )

    # one command-line option that sets several fields
    CLI_SHORTHANDS = {"guidance": ("min_guidance", "max_guidance")}

    def __post_init__(self) -> None:
        check_fields(self)
        for name, value in PRESETS.get(self.preset, {}).items():
            setattr(self, name, value)
        if self.student and (self.num_steps > STUDENT_MAX_STEPS or self.uses_guidance):
            raise ValueError(
                f"student: a distilled student samples in 1 or {STUDENT_MAX_STEPS} steps without "
                f"guidance, got num_steps {self.num_steps} and guidance up to "
                f"{max(self.min_guidance, self.max_guidance)}: use --preset realtime or "
                "--steps 2 --guidance 1 for the student, or --no-student (or --preset quality) "
                "for the full model's steps and guidance"
            )
        for name in ("height", "width"):
            if getattr(self, name) % 8:
                raise ValueError(
                    f"{name} must be a multiple of 8 pixels (0 = the model's), "
                    f"got {getattr(self, name)}"
                )

    def for_model(self, defaults: dict) -> InferenceConfig:
        """This config with the fields left to the model (MODEL_FIELDS at their 'auto' value)
        taken from `defaults`, else from PUBLISHED_DEFAULTS."""
        changes = {
            name: defaults.get(name, PUBLISHED_DEFAULTS[name])
            for name, unset in MODEL_FIELDS.items()
            if getattr(self, name) == unset
        }
        return self.replace(**changes) if changes else self

    @property
    def resolved(self) -> bool:
        """True when no field is left to the model (see `for_model`)."""
        return all(getattr(self, name) != unset for name, unset in MODEL_FIELDS.items())

    def replace(self, **changes):
        """A validated copy; changing a field a preset sets drops the preset (custom values),
        and turning its student off gives the fields it set and `changes` does not their
        defaults: the full model's steps and guidance, not the student's one step."""
        check_preset(changes.get("preset", ""), changes)
        if self.preset and "preset" not in changes and set(changes) & set(PRESETS[self.preset]):
            if self.student and changes.get("student") is False:
                preset_fields = [f for f in fields(self) if f.name in PRESETS[self.preset]]
                changes = {**{f.name: f.default for f in preset_fields}, **changes}
            changes["preset"] = ""
        return super().replace(**changes)

    @property
    def objects_per_call(self) -> int:
        """max_batch_objects, with 0 resolved for the device."""
        if self.max_batch_objects:
            return self.max_batch_objects
        return 1 if self.device == "cpu" else 4

    @property
    def uses_mirror(self) -> bool:
        """Whether stage 1 also runs each window mirrored (mirror_ensemble 'on'; 'auto' is the
        model's, known once `for_model` has filled it)."""
        return self.mirror_ensemble == "on"

    @property
    def uses_reverse(self) -> bool:
        """Whether stage 1 also runs each window reversed in time (reverse_ensemble 'on')."""
        return self.reverse_ensemble == "on"

    @property
    def ensembles(self) -> tuple[str, ...]:
        """The ensemble fields that are 'on' (each doubles the windows stage 1 runs)."""
        return tuple(
            n for n in ("mirror_ensemble", "reverse_ensemble") if getattr(self, n) == "on"
        )

    @property
    def ensemble_views(self) -> int:
        """Windows stage 1 runs per object and sample: as seen, mirrored, reversed, both."""
        return 2 ** len(self.ensembles)

    @property
    def uses_guidance(self) -> bool:
        """Whether classifier-free guidance runs (a scale above 1 anywhere on the ramp)."""
        return max(self.min_guidance, self.max_guidance) > 1.0

    @property
    def fps_id(self) -> int:
        """The fps time id passed to the UNet."""
        # The reference (diffusion-vas) trains with fps = 8 but passes fps - 1 at inference.
        return self.fps - 1 if self.conditioning_mode == "reference" else self.fps

    @property
    def time_ids(self) -> tuple[float, float, float]:
        """The UNet's added time ids: (fps id, motion bucket, noise augmentation). Training
        passes the same first two with its conditioning noise (train.loop)."""
        return (float(self.fps_id), float(self.motion_bucket_id), float(self.noise_aug_strength))


@dataclass
class StreamConfig(Config):
    """How a stream of frames becomes windows, and what is published. Shared by the node and
    `amodal-ros replay` so both window the same stream the same way.

    Empty checkpoint strings mean "not used"; the node fails to configure without `checkpoint`.
    """

    checkpoint: str = param(
        "",
        "stage-1 checkpoint folder (published layout, safetensors), or a model name: "
        "'embedded' (shipped, synthetic scenes only; 'embedded-32x64': its realtime mask "
        "student at 32x64, the pace of a CPU), 'tiny' / 'random-full-size' (untrained)",
    )
    completion_checkpoint: str = param(
        "", "stage-2 checkpoint folder or model name ('embedded'); empty disables stage 2"
    )
    depth_model: str = param(
        "",
        "Depth Anything V2 folder (transformers) for RGB-only input, or an untrained size "
        "('vits', 'vitb', 'vitl', 'tiny') for benchmarks",
    )
    depth_backend: str = param(
        "auto",
        "Depth Anything runtime: eager, compile (torch.compile; CUDA graphs on a GPU), "
        "onnxruntime, tensorrt, or auto",
        None,
        None,
        DEPTH_BACKENDS,
    )
    depth_source: str = param(
        "auto",
        "'camera' (depth topic), 'model' (Depth Anything), 'none' (mask-only checkpoint), "
        "'auto' (model if depth_model is set, else camera when the checkpoint needs depth)",
        None,
        None,
        DEPTH_SOURCES,
    )
    frame_rate: float = param(
        8.0, "model frame rate, frames/s; the stream is sampled down to it by stamp", 0.1, 120.0
    )
    stride: int = param(
        5,
        "run a window every `stride` sampled frames (1 = every frame: lowest latency, most "
        "compute; with publish_frames 'new' at most num_frames)",
        1,
        1000,
    )
    publish_frames: str = param(
        "latest",
        "'latest': only the window's newest frame; 'new': every frame new since the last window",
        None,
        None,
        PUBLISH_POLICIES,
    )
    sync_mode: str = param(
        "approximate",
        "'exact' stamps or 'approximate' within sync_tolerance",
        None,
        None,
        SYNC_MODES,
    )
    sync_tolerance: float = param(
        0.01,
        "largest stamp difference of RGB, depth and mask of one frame, s (keep below half "
        "the camera period)",
        0.0,
        10.0,
    )
    sync_queue: int = param(
        30,
        "messages kept per input while waiting for partners; keep it above the masks' lag behind "
        "the camera times the camera rate, else nothing pairs",
        1,
        10000,
    )
    object_timeout: float = param(
        5.0,
        "drop an object unseen for this long and in none of the window's frames, s",
        0.0,
        3600.0,
    )
    min_object_pixels: int = param(
        16, "objects whose largest modal area in a window is below this are not run", 0
    )
    free_space_margin: float = param(
        0.1,
        "with camera depth: remove predicted hidden pixels where the depth shows a surface "
        "this fraction farther than the object's visible part (it would be seen there; "
        "0.1 = 10 cm at 1 m); 0 = off. A depth model's estimate is not used for this",
        0.0,
        10.0,
    )
    detached_part_share: float = param(
        0.2,
        "remove the parts of a predicted amodal mask smaller than this share of the frame's "
        "predicted area and than share / (1 - share) of its largest part (a connected object "
        "has one silhouette: specks of the model's noise or a segmenter's spurious blobs; the "
        "largest part is always kept); 0 = off",
        0.0,
        1.0,
    )
    track_ids: bool = param(
        False,
        "give objects stable ids by tracking the instance masks (for segmenters that number "
        "their masks afresh in every frame); off: the mask's pixel values are the ids",
    )
    track_min_iou: float = param(
        0.2,
        "track_ids: smallest IoU of a mask with a track's predicted mask to continue it",
        0.01,
        1.0,
    )
    track_reid_distance: float = param(
        1.0,
        "track_ids: a hidden object seen again within this many object sizes of where it is "
        "predicted gets its old id back",
        0.0,
        10.0,
    )
    deadline: float = param(
        0.0,
        "windows waiting longer than this are published with modal as amodal "
        "(reason DEADLINE_MISSED); 0 = no deadline, s",
        0.0,
        3600.0,
    )
    max_pending_windows: int = param(
        1, "windows waiting for the worker; older ones are dropped (counted) when full", 1, 100
    )

    def __post_init__(self) -> None:
        check_fields(self)

    @property
    def tolerance_ns(self) -> int:
        """The largest stamp difference of one frame's messages in force: 0 with exact sync."""
        return 0 if self.sync_mode == "exact" else round(self.sync_tolerance * 1e9)

    @property
    def tolerance_text(self) -> str:
        """How the stamps of one frame must agree, for a hint."""
        if self.sync_mode == "exact":
            return "equal stamps (sync_mode exact)"
        return f"stamps within sync_tolerance={self.sync_tolerance} s"


@dataclass
class TopicConfig(Config):
    """Topic names and QoS of the node (relative names: remap them in launch files)."""

    rgb_topic: str = param(
        "image",
        "RGB image (sensor_msgs/Image or, with rgb_compressed, sensor_msgs/CompressedImage)",
    )
    rgb_compressed: bool = param(False, "subscribe to rgb_topic as sensor_msgs/CompressedImage")
    depth_topic: str = param(
        "depth",
        "registered depth image, 32FC1 m or 16UC1 mm (or, with depth_compressed, "
        "sensor_msgs/CompressedImage)",
    )
    depth_compressed: bool = param(
        False,
        "subscribe to depth_topic as sensor_msgs/CompressedImage (compressedDepth or 16-bit PNG)",
    )
    mask_topic: str = param(
        "masks",
        "instance-label image, mono8/mono16/32SC1, 0 = background (or, with mask_compressed, "
        "sensor_msgs/CompressedImage)",
    )
    mask_compressed: bool = param(
        False, "subscribe to mask_topic as sensor_msgs/CompressedImage (8/16-bit PNG)"
    )
    camera_info_topic: str = param("camera_info", "sensor_msgs/CameraInfo, passed through")
    output_topic: str = param("amodal/objects", "amodal_ros/AmodalObjectArray results")
    overlay_topic: str = param("amodal/overlay", "rgb8 overlay image for RViz")
    completion_topic: str = param("amodal/completion", "rgb8 completed objects (stage 2)")
    markers_topic: str = param(
        "amodal/markers", "visualization_msgs/MarkerArray: 3D extent boxes and labels for RViz"
    )
    camera_info_out_topic: str = param("amodal/camera_info", "CameraInfo of published frames")
    input_reliability: str = param(
        "auto",
        "QoS of subscriptions: 'auto' subscribes reliable and switches a topic to best_effort "
        "when its publisher offers only that; best_effort loses most large images under load",
        None,
        None,
        INPUT_RELIABILITY,
    )
    output_reliability: str = param(
        "reliable",
        "QoS of publishers (reliable matches every subscriber)",
        None,
        None,
        QOS_RELIABILITY,
    )
    queue_depth: int = param(10, "QoS history depth", 1, 1000)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class NodeConfig(Config):
    """Node behaviour that is neither model nor stream logic."""

    autostart: bool = param(
        True,
        "configure and activate on start (false: wait for a lifecycle manager); under "
        "amodal.launch.py its autostart argument decides instead",
    )
    warmup: bool = param(
        True, "run one synthetic window in configure so the first real window is not slow"
    )
    camera_size: str = param(
        "",
        "HxW of the RGB camera, e.g. 480x640: the warm-up window's image size, so a compiled "
        "depth model compiles for the camera in configure, not in the first live window "
        "(also build-engines' default); '' = the model's working size",
    )
    diagnostics_period: float = param(1.0, "seconds between diagnostics messages", 0.1, 3600.0)
    torch_threads: int = param(
        0,
        "CPU threads for torch; 0 = auto: cores - 1 on a CPU device (the callbacks and DDS "
        "need a core, or torch's thread pool spins against them), torch's default on a GPU",
        0,
        1024,
    )
    publish_when_idle: bool = param(False, "run inference even when no output has a subscriber")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.camera_size:
            image_size(self.camera_size, "camera_size")


# Every node parameter, in declaration order (the node's YAML lists them all).
NODE_CONFIGS = (InferenceConfig, StreamConfig, TopicConfig, NodeConfig)


def node_configs(values: dict[str, Any]) -> tuple:
    """(InferenceConfig, StreamConfig, TopicConfig, NodeConfig) from {parameter name: value}
    (a node's parameters or a parameter file); raises ValueError naming the parameter."""
    configs = []
    for cls in NODE_CONFIGS:
        kwargs = {f.name: values[f.name] for f in fields(cls) if f.name in values}
        if cls is InferenceConfig:  # a value off its default is one given
            given = {
                f.name: kwargs[f.name]
                for f in fields(cls)
                if kwargs.get(f.name, f.default) != f.default
            }
            check_preset(kwargs.get("preset", ""), given)
        configs.append(cls(**kwargs))
    return tuple(configs)


def check_preset(preset: str, given: dict[str, Any]) -> None:
    """Refuse a preset given with other values of the fields it sets: the preset won, and
    `--preset fast --steps 10` (or `num_steps: 10` beside `preset: fast`) ran 4 steps."""
    sets = PRESETS.get(preset, {})
    clashes = [name for name, value in sets.items() if name in given and given[name] != value]
    if clashes:
        raise ValueError(
            f"preset {preset!r} sets "
            + ", ".join(f"{name} to {sets[name]}" for name in clashes)
            + ", but "
            + ", ".join(f"{name} {given[name]}" for name in clashes)
            + " was given too: drop one (preset '' runs the values given)"
        )


# every rclpy node's own parameters, which a node's parameter file may set too
ROS_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})


def unknown_parameters(names) -> list[str]:
    """The `names` that are no node parameter, each with the parameter it is closest to: ROS
    ignores a parameter file's undeclared key, so a typo'd one would silently not apply."""
    import difflib

    known = {f.name for cls in NODE_CONFIGS for f in fields(cls)}
    unknown = []
    for name in sorted(set(names) - known - ROS_PARAMETERS):
        if name.startswith("qos_overrides."):  # rclpy's, for entities that opt in: none here
            qos = "input_reliability, output_reliability and queue_depth"
            unknown.append(f"{name} (this node sets QoS with {qos})")
            continue
        close = difflib.get_close_matches(name, known, n=1)
        unknown.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return unknown


def image_size(text: str, name: str) -> tuple[int, int]:
    """(height, width) of an 'HxW' text such as 480x640; raises ValueError naming `name`."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"{name} must be HxW in pixels, e.g. 480x640, got {text!r}")
    return int(parts[0]), int(parts[1])


def working_size(text: str) -> dict[str, int]:
    """{"height", "width"} of "HEIGHTxWIDTH" ({} for ''): at least 16 (a training run's
    smallest) and multiples of 8 (the VAE's downsampling)."""
    if not text:
        return {}
    advice = "give HEIGHTxWIDTH in pixels, multiples of 8 from 16 (e.g. 64x128)"
    try:
        height, width = image_size(text, "working_size")
    except ValueError:
        raise ValueError(f"working_size {text!r}: {advice}") from None
    if min(height, width) < 16 or height % 8 or width % 8:
        raise ValueError(f"working_size {text!r}: {advice}")
    return {"height": height, "width": width}
