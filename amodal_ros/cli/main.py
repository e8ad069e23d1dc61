"""`amodal-ros` command: infer, demo, demo-bag, replay, replay-many, synth, eval, train,
distill, bench, build-engines. Errors print one line and exit non-zero.

Every command is a module with an `Args` dataclass and `run(args)`; its options are generated
from the dataclass (amodal_ros.cli.options), so a setting has one name in the node's YAML,
`ros2 param` and on the command line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

from amodal_ros import __version__
from amodal_ros.core.errors import (
    BackendUnavailableError,
    CheckpointError,
    InputError,
    ProcessingError,
)
from amodal_ros.core.imports import quiet_libraries

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C
EXIT_TERMINATED = 143  # ... and one stopped by SIGTERM


# set by SIGTERM (`timeout`, `docker stop`, Slurm, Kubernetes), which raises KeyboardInterrupt
# where Ctrl-C would: the command stops the same way, its staged outputs removed (it left them
# half-written). A flag, not an exception subclass: Ray turns any KeyboardInterrupt raised in
# its waits into a plain one.
TERMINATED = threading.Event()


def _terminate(signum, frame) -> None:
    TERMINATED.set()
    raise KeyboardInterrupt


# command -> (module with Args and run, one-line help)
COMMANDS = {
    "infer": ("amodal_ros.cli.infer", "amodal masks (and completions) for a folder of frames"),
    "demo": ("amodal_ros.cli.demo", "the product end to end on a synthetic scene (no downloads)"),
    "demo-bag": ("amodal_ros.cli.demo_bag", "write a synthetic RGB-D rosbag2 (no downloads)"),
    "replay": ("amodal_ros.cli.replay", "run a recorded bag offline into a bag of results"),
    "replay-many": ("amodal_ros.cli.replay_many", "replay many bags in parallel on Ray"),
    "synth": ("amodal_ros.cli.synth", "synthetic amodal video clips with ground truth"),
    "eval": ("amodal_ros.cli.evaluate", "mIoU / mIoU_occ of the model and the baselines"),
    "train": ("amodal_ros.cli.train", "train a stage or the autoencoder (accelerate)"),
    "distill": ("amodal_ros.cli.distill", "a one-step student of stage 1 or 2 (preset realtime)"),
    "bench": ("amodal_ros.cli.bench", "reference pattern vs amodal_ros: speed side by side"),
    "build-engines": ("amodal_ros.cli.build_engines", "prebuild the node's ONNX / TensorRT files"),
}


def command(name: str):
    """The module of a command (it has `Args` and `run`)."""
    return importlib.import_module(COMMANDS[name][0])


class _Parser(argparse.ArgumentParser):
    """Errors in one line, as every other error of the CLI (argparse printed its ~40-line
    usage before a wrong value or a missing option)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (--help lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `amodal-ros` parser with one generated subparser per command."""
    from amodal_ros.cli.options import add_arguments, first_paragraph

    # no abbreviations: `--strid 3` taken for --stride hides a typo, and breaks when a new flag
    # shares the prefix
    parser = _Parser(prog="amodal-ros", description=first_paragraph(__doc__), allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"amodal_ros {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, text) in COMMANDS.items():
        module = command(name)
        sub = commands.add_parser(
            name,
            help=text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            allow_abbrev=False,
        )
        add_arguments(sub, module.Args)
    return parser


def check_flags(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Name a mistyped flag of the command, with the closest one, before argparse parses:
    it reports a missing required option first (`--ouput x` read as '--out is required') and
    an unknown one with the top-level usage, not the command's."""
    import difflib

    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    name = next((a for a in argv if a in commands.choices), None)
    if name is None:
        return
    sub = commands.choices[name]
    known = {flag for action in sub._actions for flag in action.option_strings}
    for arg in argv[argv.index(name) + 1 :]:
        if arg == "--":
            return
        flag = arg.split("=", 1)[0]
        if flag in ("-v", "--verbose") and flag not in known:  # amodal-ros's own flag
            sub.exit(
                2,
                f"{sub.prog}: error: {flag} goes before the command: "
                f"amodal-ros {flag} {name} ...\n",
            )
        if flag == "--set" and flag not in known:  # a train habit, or a ROS one
            sub.exit(
                2,
                f"{sub.prog}: error: {name} has no --set: each setting is its own option, "
                "e.g. --stride 3 (--help lists them)\n",
            )
        if flag.startswith("--") and flag not in known:
            close = difflib.get_close_matches(flag, sorted(known), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            sub.exit(2, f"{sub.prog}: error: unknown option {flag} ({hint}--help lists them)\n")


def main(argv: list[str] | None = None) -> int:
    """Parse, run one command, and turn a bad-input error into one line and exit code 2."""
    from amodal_ros.cli.options import from_namespace

    parser = build_parser()
    check_flags(parser, sys.argv[1:] if argv is None else argv)
    ns = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if ns.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only; never reach for a hub
    quiet_libraries(ns.verbose)
    module = command(ns.command)
    from yaml import YAMLError

    TERMINATED.clear()
    main_thread = threading.current_thread() is threading.main_thread()  # signals go there
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        module.run(from_namespace(module.Args, ns))
    except (
        InputError,
        CheckpointError,
        BackendUnavailableError,
        ValueError,
        ImportError,
        OSError,  # a missing, unreadable or wrong kind of path; a full disk
        YAMLError,  # a params or training YAML that does not parse
    ) as err:
        print(f"amodal-ros {ns.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProcessingError as err:
        print(f"amodal-ros {ns.command}: failed: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:  # outputs are staged: none is left half-written
        terminated = TERMINATED.is_set()
        print(
            f"amodal-ros {ns.command}: {'terminated' if terminated else 'interrupted'}",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
