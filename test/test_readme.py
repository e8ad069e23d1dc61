"""The README stays true: its example code is the file the tests run, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_grasp_example_in_readme_is_the_tested_file():
    match = re.search(r"<!-- example: (\S+) -->\n```python\n(.*?)```", README, re.S)
    assert match, "README lost the example block"
    path, code = match.groups()
    assert code == (ROOT / path).read_text()


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    command = "bash scripts/setup.sh && scripts/with_env.sh python -m pytest -q -n 2"
    assert command in README and command in ci


def test_readme_cli_commands_exist():
    from amodal_ros.cli.main import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)
    used = set(re.findall(r"amodal-ros ([a-z][a-z-]+)", README))
    assert used <= commands, used - commands
