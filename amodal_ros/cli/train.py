"""`amodal-ros train CONFIG`: stage-1 training on synthetic amodal video (accelerate).

Usage:
    amodal-ros train config/train_stage1.yaml [--out train_out] [--steps 200] [--set lr=1e-4]
    accelerate launch -m amodal_ros.cli.main train config/train_stage1.yaml   # GPUs, nodes

CONFIG is a YAML mapping of amodal_ros.train.loop.TrainConfig fields; an existing OUT with a
saved state is resumed.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="YAML of TrainConfig fields")
    parser.add_argument("--out", help="output folder (overrides the config)")
    parser.add_argument("--steps", type=int, help="optimizer steps (overrides the config)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field (YAML value), repeatable",
    )
    parser.add_argument("--no-progress", action="store_true")


def run(ns: argparse.Namespace) -> dict:
    import yaml

    from amodal_ros.train.loop import TrainConfig, train

    if not ns.config.is_file():
        raise FileNotFoundError(f"training config {ns.config} does not exist")
    values = yaml.safe_load(ns.config.read_text()) or {}
    for item in ns.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        values[key.strip()] = yaml.safe_load(value)
    unknown = set(values) - set(TrainConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{ns.config}: unknown training settings {sorted(unknown)}")
    overrides = {"out": ns.out, "steps": ns.steps}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if ns.no_progress:
        values["progress"] = False
    result = train(TrainConfig(**values))
    print(f"trained {result['steps']} steps; checkpoint: {result['final']}")
    return result
