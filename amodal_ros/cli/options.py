"""Command-line options generated from dataclasses, so a knob has one name everywhere.

A command's arguments are a dataclass of `param` fields (amodal_ros.core.config); a `group`
field holds a whole config (InferenceConfig, StreamConfig) whose fields become options too:
`num_steps` is the ROS parameter `num_steps`, the YAML key `num_steps` and the option
`--num-steps` (plus the short `--steps` it declares). Options not given keep the command's
defaults, so a model's own defaults (working size, conditioning mode) still apply.

    add_arguments(parser, ReplayArgs)
    args = from_namespace(ReplayArgs, parser.parse_args())
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, Field, fields
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """Add one option (or positional argument) per field of the dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.metadata.get("group"):
            config_cls = f.metadata.get("overrides") or hints[f.name]
            base = None if f.metadata.get("overrides") else f.default_factory()
            section = parser.add_argument_group(
                f"{config_cls.__name__} ({first_paragraph(config_cls.__doc__ or '')})"
            )
            config_hints = typing.get_type_hints(config_cls)
            for cf in _selected(f, config_cls):
                default = None if base is None else getattr(base, cf.name)
                _add(section, cf, config_hints[cf.name], default, f"{f.name}.{cf.name}")
            for short, targets in getattr(config_cls, "CLI_SHORTHANDS", {}).items():
                if all(_is_selected(f, t) for t in targets):
                    section.add_argument(
                        "--" + short.replace("_", "-"),
                        dest=f"{f.name}.{short}",
                        type=config_hints[targets[0]],
                        default=argparse.SUPPRESS,
                        help=f"sets {' and '.join(targets)} together",
                    )
        else:
            default = f.default if f.default is not MISSING else _factory_default(f)
            _add(parser, f, hints[f.name], default, f.name)


def first_paragraph(doc: str) -> str:
    """A docstring's first paragraph on one line (its first line may end mid-sentence)."""
    return " ".join(doc.strip().split("\n\n")[0].split())


def from_namespace(cls, ns: argparse.Namespace):
    """An instance of `cls` from parsed options: given options over the field defaults."""
    given = vars(ns)
    kwargs = {}
    for f in fields(cls):
        if f.metadata.get("group"):
            config_cls = f.metadata.get("overrides") or typing.get_type_hints(cls)[f.name]
            prefix = f.name + "."
            changes = {
                name[len(prefix) :]: value
                for name, value in given.items()
                if name.startswith(prefix)
            }
            for short, targets in getattr(config_cls, "CLI_SHORTHANDS", {}).items():
                if short in changes:
                    value = changes.pop(short)
                    changes.update({t: value for t in targets if t not in changes})
            if f.metadata.get("overrides"):
                kwargs[f.name] = changes
                continue
            base = f.default_factory()
            kwargs[f.name] = base.replace(**changes) if changes else base
        elif f.name in given:
            kwargs[f.name] = _in_range(f, given[f.name])
    return cls(**kwargs)


def _in_range(f: Field, value):
    """A command's own option checked against its declared range (a config group's fields are
    checked by the config, with the same `range_error`)."""
    from amodal_ros.core.config import range_error

    name = "--" + f.name.replace("_", "-")
    for v in value if isinstance(value, list) else [value]:
        why = None if v is None else range_error(name, v, f.metadata.get("range", (None, None)))
        if why:
            raise ValueError(why)
    return value


def _selected(group_field: Field, config_cls) -> list[Field]:
    return [cf for cf in fields(config_cls) if _is_selected(group_field, cf.name)]


def _is_selected(group_field: Field, name: str) -> bool:
    only, exclude = group_field.metadata["only"], group_field.metadata["exclude"]
    return (not only or name in only) and name not in exclude


def _factory_default(f: Field):
    return f.default_factory() if f.default_factory is not MISSING else MISSING


def _add(container, f: Field, hint, default, dest: str) -> None:
    meta = f.metadata
    kind, many = _kind(hint)
    text = meta.get("help", "")
    if kind is bool and default is not None:  # None: the config file's value
        text += f" (default: {'on' if default else 'off'})"
    elif default not in (MISSING, None, "", (), []):
        text += f" (default: {default})"
    help_text = text.replace("%", "%%")  # argparse %-formats help texts
    kwargs: dict = {"help": help_text, "default": argparse.SUPPRESS}
    if meta.get("choices"):
        kwargs["choices"] = list(meta["choices"])
    if kind is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = _path if kind is Path else kind
        if many and meta.get("one_each"):  # `--set a=1 --set b=2`: one value a flag, so a
            kwargs.update(action="append")  # positional after it is not taken for a value
        elif many:  # `--skip a b` collects every value up to the next flag
            kwargs.update(action="extend", nargs="+")
    if meta.get("positional"):
        kwargs.pop("default")
        container.add_argument(dest, metavar=f.name.upper(), **kwargs)
        return
    if default is MISSING:
        kwargs["required"] = True
    if kind is not bool and not meta.get("choices"):
        kwargs["metavar"] = f.name.upper()  # CHECKPOINT, not the dest's STREAM.CHECKPOINT
    names = ["--" + f.name.replace("_", "-"), *meta.get("flags", ())]
    container.add_argument(*names, dest=dest, **kwargs)


def _path(text: str) -> Path:
    """A path option's value; an empty one is refused: Path('') is '.', and `eval --out ''`
    wrote its results into the current folder."""
    if not text:
        raise argparse.ArgumentTypeError("empty path: name a file or folder")
    return Path(text)


def _kind(hint) -> tuple[type, bool]:
    """(element type, whether a list) of a field annotation."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _kind(inner[0])
    if origin in (list, tuple):
        return typing.get_args(hint)[0], True
    if hint in (bool, int, float, str, Path):
        return hint, False
    raise TypeError(f"no command-line form for a field of type {hint!r}")
