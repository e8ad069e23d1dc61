r"""`amodal-ros train CONFIG`: a training stage on synthetic amodal video (accelerate).

Usage:
    amodal-ros train config/train_stage1.yaml [--out train_out] [--steps 200] [--set lr=1e-4]
    accelerate launch --config_file config/accelerate_multi_gpu.yaml \
        -m amodal_ros.cli.main train config/train_stage1.yaml   # GPUs, nodes (docs/training.md)

CONFIG is a YAML mapping of amodal_ros.train.loop.TrainConfig fields; an existing OUT with a
saved state is resumed.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field
from pathlib import Path

from amodal_ros.core.config import param


@dataclass
class Args:
    """A training config file and overrides of its fields."""

    config: Path = param(MISSING, "YAML of TrainConfig fields", positional=True)
    out: str | None = param(None, "output folder (overrides the config)")
    steps: int | None = param(None, "optimizer steps (overrides the config)")
    set: list[str] = field(
        default_factory=list,
        metadata={
            "help": "override a config field, KEY=VALUE (a YAML value); repeat for more",
            "one_each": True,
        },
    )
    progress: bool | None = param(None, "progress bar (default: the config's, else on)")


def run(args: Args) -> dict:
    """Train (or resume); returns {"steps", "final", "losses"}."""
    import yaml

    from amodal_ros.cli.io import one_line, read_yaml_mapping
    from amodal_ros.core.staging import check_makeable
    from amodal_ros.train.loop import TrainConfig, train

    values = read_yaml_mapping(args.config, "training config")
    known = set(TrainConfig.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"{args.config}: unknown training settings {sorted(map(str, unknown))}")
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        if key.strip() not in known:
            raise ValueError(f"--set {item!r}: unknown training setting {key.strip()!r}")
        try:
            values[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as err:  # PyYAML's own message spans six lines
            why = one_line(err)
            raise ValueError(f"--set {item!r}: the value is no YAML value ({why})") from None
    overrides = {"out": args.out, "steps": args.steps}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if args.progress is not None:
        values["progress"] = args.progress
    config = TrainConfig(**values)
    check_makeable(Path(config.out), "--out")  # a raw "[Errno 20]" once the data was read
    result = train(config)
    if result["main_process"]:  # under accelerate launch: one line, not one per process
        print(f"trained {result['steps']} steps; checkpoint: {result['final']}")
    return result
