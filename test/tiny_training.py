"""Short `amodal-ros train` runs of the seeded tiny model, shared by the training tests."""

from __future__ import annotations

from pathlib import Path

import yaml

from amodal_ros.cli.main import main

# a pixel-space student: the VAE decoder trains beside the UNet, outside the prepared model
PIXEL_STUDENT = dict(
    stage="distill",
    init="tiny",
    trainable="all",
    distill_target="truth",
    distill_space="pixels",
    render_scale=2,
)


def train_tiny(folder: Path, name: str, steps: int, **settings) -> Path:
    """Train `folder/name` from a YAML config (4 frames of 32x64, a save every step, lr 1e-3
    unless `settings` say otherwise) and return it."""
    config = dict(out=str(folder / name), steps=steps, num_frames=4, height=32, width=64)
    config |= dict(lr=1e-3, save_every=1, log_every=1, progress=False) | settings
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path)]) == 0
    return folder / name
