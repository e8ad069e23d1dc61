"""`amodal-ros` command: infer, demo, demo-bag, replay, synth, eval, train, bench,
build-engines. Errors print one line and exit non-zero."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from amodal_ros import __version__
from amodal_ros.core.errors import BackendUnavailableError, CheckpointError, InputError

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    from amodal_ros.cli import (
        bench,
        build_engines,
        demo,
        demo_bag,
        evaluate,
        infer,
        replay,
        synth,
        train,
    )

    parser = argparse.ArgumentParser(prog="amodal-ros", description=__doc__)
    parser.add_argument("--version", action="version", version=f"amodal_ros {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    infer.add_arguments(commands.add_parser("infer", help="amodal masks for a folder of frames"))
    demo.add_arguments(commands.add_parser("demo", help="run on a synthetic clip (no downloads)"))
    demo_bag.add_arguments(
        commands.add_parser("demo-bag", help="write a synthetic RGB-D rosbag2 (no downloads)")
    )
    replay.add_arguments(
        commands.add_parser("replay", help="run a recorded bag offline into a bag of results")
    )
    synth.add_arguments(
        commands.add_parser("synth", help="synthetic amodal video clips with ground truth")
    )
    evaluate.add_arguments(
        commands.add_parser("eval", help="mIoU / mIoU_occ of the model and the baselines")
    )
    train.add_arguments(commands.add_parser("train", help="stage-1 training (accelerate)"))
    bench.add_arguments(
        commands.add_parser("bench", help="reference pattern vs amodal_ros: speed side by side")
    )
    build_engines.add_arguments(
        commands.add_parser(
            "build-engines", help="prebuild ONNX exports / TensorRT engines for the node"
        )
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only; never reach for a hub
    _quiet_libraries(args.verbose)
    try:
        if args.command == "infer":
            from amodal_ros.cli import infer

            summary = infer.run(
                infer.InferArgs(
                    frames=args.frames,
                    masks=args.masks,
                    checkpoint=args.checkpoint,
                    out=args.out,
                    depth=args.depth,
                    depth_model=args.depth_model,
                    completion_checkpoint=args.completion_checkpoint,
                    overwrite=args.overwrite,
                ),
                infer.config_from(args),
            )
            _print_infer_summary(args, summary)
        elif args.command == "demo":
            from amodal_ros.cli import demo

            summary = demo.run(args)
            print(
                f"wrote {args.out}: input bag demo_bag/, results bag results/ "
                f"({summary['results_written']} frames), video: {', '.join(summary['videos'])}"
            )
        elif args.command == "train":
            from amodal_ros.cli import train

            train.run(args)
        elif args.command == "eval":
            from amodal_ros.cli import evaluate

            evaluate.run(args)
        elif args.command == "synth":
            from amodal_ros.cli import synth

            synth.run(args)
        elif args.command == "bench":
            from amodal_ros.cli import bench

            bench.run(args)
        elif args.command == "build-engines":
            from amodal_ros.cli import build_engines

            build_engines.run(args)
        elif args.command == "demo-bag":
            from amodal_ros.cli import demo_bag

            demo_bag.run(args)  # prints its one-line summary
        else:
            from amodal_ros.cli import replay

            replay.run(args)  # prints its summary
    except (
        InputError,
        CheckpointError,
        BackendUnavailableError,
        ValueError,
        ImportError,
        FileNotFoundError,
    ) as err:
        print(f"amodal-ros {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _print_infer_summary(args: argparse.Namespace, summary: dict) -> None:
    print(
        f"wrote {args.out}: {len(summary['objects'])} objects x {summary['num_frames']} frames, "
        f"{summary['windows']} window(s) in {summary['seconds']:.1f} s; "
        f"video: {', '.join(summary['videos'])}"
    )


def _quiet_libraries(verbose: bool) -> None:
    if verbose:
        return
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        from diffusers.utils import logging as df_logging

        df_logging.set_verbosity_error()
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
