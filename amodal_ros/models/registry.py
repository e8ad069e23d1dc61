"""Model names and folders -> the models they stand for. The one place that knows the names.

    components("embedded", stage=1)      # the shipped model (synthetic scenes only)
    components("embedded", student=True) # stage 1's distilled one-step student (preset realtime)
    components("embedded", stage=2, student=True)   # stage 2's (STUDENT_FOLDERS)
    components("embedded-32x64", student=True)      # stage 1's student at 32x64 (a CPU's pace)
    components("tiny") / components("random-full-size")   # untrained, seeded: tests, benchmarks
    components("/path/to/diffusion-vas-amodal-segmentation")   # a checkpoint folder
    components("/path/to/diffusion-vas-content-completion", stage=2)
    depth_model("vits") / depth_model("/path/to/Depth-Anything-V2-Small-hf")

Each model carries its InferenceConfig defaults (`VasComponents.defaults`: working size and
conditioning mode); the pipeline's factory (amodal_ros.pipeline.factory) builds runnable
pipelines from what this module returns.
"""

from __future__ import annotations

import logging
from difflib import get_close_matches
from pathlib import Path

from amodal_ros.core.errors import CheckpointError
from amodal_ros.models.components import VasComponents

log = logging.getLogger("amodal_ros.models")

EMBEDDED = "embedded"
EMBEDDED_ROOT = Path(__file__).resolve().with_name(EMBEDDED)  # resolve: colcon symlink install
EMBEDDED_CARD = EMBEDDED_ROOT / "MODEL_CARD.md"
# the embedded model's distilled one-step students (preset realtime), per stage
STUDENT_FOLDERS = {1: "student1", 2: "student2"}
# The embedded model with the stage-1 student shipped until 2026-12-05, at 32x64: a quarter of
# the 64x128 one's cost per window, so a CPU keeps pace with it (docs/speed.md), for about 5
# points less of the hidden parts (mIoU_occ_all 48.44 against 53.36, MODEL_CARD.md).
# Name -> its students' folders; every other folder is shared.
EMBEDDED_STUDENTS = {
    EMBEDDED: STUDENT_FOLDERS,
    "embedded-32x64": {1: "student1_32x64", 2: "student2"},
}
EMBEDDED_NOTE = (
    "NOTE: running the embedded model, a small Diffusion-VAS trained on synthetic scenes only "
    "(see amodal_ros/models/embedded/MODEL_CARD.md). It does not generalise to real "
    "cameras: set checkpoint DIR and preset quality for the published Diffusion-VAS weights "
    "(--checkpoint/--preset on the command line, parameters of the node; they have no "
    "one-step student)."
)
RANDOM_NOTE = (
    "NOTE: running {name!r}, an untrained model (random weights, for tests and benchmarks): "
    "its masks are noise; pass a checkpoint folder, or 'embedded' for the shipped model."
)
# Untrained seeded models of the real classes: name -> architecture size (its defaults:
# architectures.SIZE_DEFAULTS).
RANDOM = {"tiny": "tiny", "random-full-size": "full"}
DEPTH_SIZES = ("tiny", "vits", "vitb", "vitl")  # untrained Depth Anything V2 sizes
NAMES = (*EMBEDDED_STUDENTS, *RANDOM)
# name -> the same model at less cost per `realtime` window (what the node's pace check
# suggests when a window does not keep up)
CHEAPER = {EMBEDDED: "embedded-32x64"}


def is_embedded(name: str) -> bool:
    """Whether `name` selects the shipped synthetic-trained model (either student)."""
    return name in EMBEDDED_STUDENTS


def note(name: str) -> str:
    """What a user should know when this model runs ('' for none)."""
    if is_embedded(name):
        return EMBEDDED_NOTE
    if name in RANDOM:
        return RANDOM_NOTE.format(name=name)
    return ""


def missing_folder(name: str, names: tuple[str, ...] = NAMES) -> bool:
    """Whether `name` names a folder that does not exist: not '', not a model of `names`
    (NAMES; DEPTH_SIZES for a depth model), and no path here (checked before loading starts
    costly work: Ray, a training run)."""
    return bool(name) and name not in names and not Path(name).expanduser().exists()


def embedded_folder(stage: int, student: bool = False, name: str = EMBEDDED) -> Path:
    """The embedded model's checkpoint folder of `stage` (1 or 2), or of its distilled
    student (the one `name` selects)."""
    folder = EMBEDDED_ROOT / (EMBEDDED_STUDENTS[name][stage] if student else f"stage{stage}")
    if not (folder / "model_index.json").is_file():
        what = f"stage-{stage} {'student' if student else 'model'}"
        raise CheckpointError(
            f"the embedded {what} is missing from {folder}: reinstall amodal_ros "
            "(scripts/setup.sh) or pass a checkpoint folder"
        )
    return folder


def components(
    name: str, stage: int = 1, seed: int = 0, student: bool = False, any_stage: bool = False
) -> VasComponents:
    """The models of one stage: a checkpoint folder, or one of NAMES (CPU, fp32, frozen).
    `student` selects the embedded model's distilled student, or an untrained one of a seeded
    architecture (for benchmarks); a folder is what it is (the sampler checks that it matches
    the config), refused when it records the other stage, unless `any_stage` (training takes
    what it needs from any folder, and marks what it writes itself).

    A name of NAMES means the model, even where a checkpoint folder of that name exists
    (warned): what a config means does not change with the directory a command runs in, and
    the folder is always reachable as ./NAME or by its full path.

    Raises:
        CheckpointError: a folder that cannot be loaded (named, with what to do).
    """
    from amodal_ros.models.layout import load_components

    checked = None if any_stage else stage
    if name in NAMES and (Path(name) / "model_index.json").is_file():
        log.warning(
            "checkpoint %r is the model of that name, not the folder %s: pass ./%s for the folder",
            name,
            Path(name).resolve(),
            name,
        )
    if is_embedded(name):
        return load_components(embedded_folder(stage, student, name), checked)
    if name in RANDOM:
        from amodal_ros.models.architectures import build_components
        from amodal_ros.models.components import student_schedule

        built = build_components(RANDOM[name], seed=seed)
        built.stage = stage
        if student:  # an untrained student of the same architecture: its cost is the real one
            built.scheduler_config = student_schedule(built.scheduler_config)
            built.student = {"teacher": name, "untrained": True}
        return built
    if not name:
        raise CheckpointError(
            "no checkpoint given: pass a checkpoint folder, or 'embedded' for the shipped "
            "synthetic-trained model"
        )
    if missing_folder(name) and (near := get_close_matches(name, NAMES, n=1, cutoff=0.75)):
        raise CheckpointError(
            f"checkpoint {name!r} is no folder and no model name; did you mean {near[0]!r}? "
            f"(the names: {', '.join(NAMES)})"
        )
    return load_components(name, checked)


def depth_model(name: str, seed: int = 0):
    """Depth Anything V2 (`DepthAnythingForDepthEstimation`): a transformers folder, or an
    untrained size of DEPTH_SIZES for benchmarks."""
    if name in DEPTH_SIZES:
        from amodal_ros.models.architectures import build_depth_anything

        if name != "tiny":  # the reference's --depth_encoder names: easily taken for the
            # trained models
            log.warning(
                "depth model %r is an untrained Depth Anything V2 (random weights, for "
                "benchmarks): its depth is noise; pass a Depth-Anything-V2-*-hf folder",
                name,
            )
        return build_depth_anything(name, seed)
    from transformers import DepthAnythingForDepthEstimation

    from amodal_ros.models.weights import check_weight_folder, load_pretrained_strict

    root = Path(name).expanduser()
    if not root.exists():
        raise CheckpointError(
            f"depth model {root} does not exist: give a Depth Anything V2 folder (config.json "
            "and *.safetensors, e.g. depth-anything/Depth-Anything-V2-Small-hf, downloaded "
            "beforehand)"
        )
    if not (root / "config.json").is_file():
        raise CheckpointError(
            f"{root} is not a Depth Anything V2 folder: expected config.json and *.safetensors "
            "(e.g. depth-anything/Depth-Anything-V2-Small-hf, downloaded beforehand)"
        )
    check_weight_folder(root)
    model = load_pretrained_strict(DepthAnythingForDepthEstimation, root)
    kind = getattr(model.config, "depth_estimation_type", "relative")
    if kind != "relative":  # a metric head gives metres (larger = farther), not inverse depth
        raise CheckpointError(
            f"{root} is a {kind} Depth Anything (depth in metres, larger = farther); the "
            "model is conditioned on relative inverse depth: use a relative "
            "Depth-Anything-V2-*-hf folder (Small, Base, Large), or camera depth"
        )
    return model.eval().requires_grad_(False)
