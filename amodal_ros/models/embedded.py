"""The embedded default model: a small Diffusion-VAS (same architectures) trained here on
synthetic amodal video, shipped in the package so every machine can run the product.

It knows synthetic scenes only; real-world generalisation needs the published weights
(REFERENCE.md), which stay one `--checkpoint` away. See embedded/MODEL_CARD.md.
"""

from __future__ import annotations

from pathlib import Path

from amodal_ros.core.errors import CheckpointError

ROOT = Path(__file__).resolve().with_name("embedded")  # resolve: colcon --symlink-install
STAGE1 = ROOT / "stage1"  # mask + depth amodal segmentation
STAGE2 = ROOT / "stage2"  # content completion
MODEL_CARD = ROOT / "MODEL_CARD.md"
# Inference settings it was trained and evaluated with: its working size (8x16 latents, 4x VAE).
SETTINGS = dict(height=32, width=64)
NAME = "embedded"  # checkpoint value that selects it (`checkpoint: embedded`)
NOTE = (
    "NOTE: running the embedded model, a small Diffusion-VAS trained on synthetic scenes only "
    "(32x64; see amodal_ros/models/embedded/MODEL_CARD.md). It does not generalise to real "
    "cameras: pass --checkpoint DIR for the published Diffusion-VAS weights."
)


def settings_for(checkpoint: str) -> dict:
    """InferenceConfig fields a checkpoint needs beyond the published defaults: the embedded
    model's SETTINGS for 'embedded', nothing for a published-layout folder."""
    return dict(SETTINGS) if checkpoint == NAME else {}


def resolve(checkpoint: str, stage: int = 1) -> str:
    """`checkpoint` with 'embedded' replaced by the embedded model's folder of `stage`."""
    if checkpoint != NAME:
        return checkpoint
    folder = STAGE1 if stage == 1 else STAGE2
    if not (folder / "model_index.json").is_file():
        raise CheckpointError(
            f"the embedded stage-{stage} model is missing from {folder}: reinstall amodal_ros "
            "(scripts/setup.sh) or pass a checkpoint folder"
        )
    return str(folder)
