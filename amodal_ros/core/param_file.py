"""Which sections of a ROS 2 parameter file (`--params-file`) apply to a node, as rcl reads
them: `build-engines` takes the node's parameters from one, and the node warns of one that
names no section of its own (a classic slip: the node then runs on its defaults in silence)."""

from __future__ import annotations

import re


def node_parameters(data: dict, node: str) -> dict | None:
    """{parameter: value} the node of full name `node` takes from the parsed parameter file
    `data`: every section whose name matches it ('/**', '/**/amodal_node', '/ns/amodal_node',
    nested namespaces; `*` one name, `**` any), merged in file order as rcl merges them (a
    robot's file often starts with a '/**' section for all its nodes); None when none does."""
    node = "/" + node.strip("/")
    merged, found = {}, False
    for name, params in sections(data):
        if _matches(name, node):
            merged.update(params)
            found = True
    return merged if found else None


def sections(mapping: dict, prefix: str = ""):
    """(node name with its namespaces, its ros__parameters) of every section, in file order."""
    for key, value in mapping.items():
        if not isinstance(value, dict):
            continue
        name = f"{prefix}/{str(key).strip('/')}"
        if isinstance(value.get("ros__parameters"), dict):
            yield name, value["ros__parameters"]
        else:
            yield from sections(value, name)


def _matches(section: str, node: str) -> bool:
    """Whether a parameter file's section name applies to the node `node`, as rcl reads it."""
    parts = [
        "(/[^/]+)*" if token == "**" else "/[^/]+" if token == "*" else "/" + re.escape(token)
        for token in section.strip("/").split("/")
    ]
    return re.fullmatch("".join(parts), node) is not None


def files_without_a_section(paths: list[str], node: str) -> list[tuple[str, list[str]]]:
    """(path, its sections' names) of each parameter file in `paths` whose every section names
    other nodes than `node` (or that holds none): rcl takes nothing from it. A file that does
    not parse is rcl's to refuse."""
    import yaml

    unmatched = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        data = data if isinstance(data, dict) else {}
        if node_parameters(data, node) is None:
            unmatched.append((path, [name for name, _ in sections(data)]))
    return unmatched
