"""`ros2 run amodal_ros amodal_node` (and `amodal-ros-node`): start the process, spin the
node until shutdown, end with an exit code. What happens before rclpy starts lives here
(`--help`, params-file checks, malloc arenas, SIGTERM); the node itself is ros/node.py.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

import rclpy

from amodal_ros.ros.node import AmodalNode
from amodal_ros.ros.params import parameter_error, parameter_specs

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)
MALLOC_ARENAS = 2  # measured: RSS held level under a 30 Hz camera (limit_malloc_arenas)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX does); whether it was applied.

    glibc gives threads that allocate at once their own arenas (DDS, the executor, torch, the
    inference worker), each keeping freed memory: under a 30 Hz camera the node's RSS stepped
    from 1.3 to 1.4 GiB in a 10-minute soak with the default, and held 1.2-1.3 GiB with two
    arenas (docs/speed.md). Without glibc (musl, macOS) nothing changes."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def params_files(argv: list[str]) -> list[str]:
    """The `--params-file` arguments in `argv`."""
    return [path for flag, path in zip(argv, argv[1:], strict=False) if flag == "--params-file"]


def missing_params_files(argv: list[str]) -> list[str]:
    """The `--params-file` arguments in `argv` that are no file."""
    return [path for path in params_files(argv) if not os.path.isfile(path)]


def arguments_error(err: Exception) -> str:
    """Why rcl refused the command line (a params file it cannot parse, `-p NAME` without
    `:=VALUE`, a remap, an unknown ROS argument), in one line without rcl's C file and line."""
    if type(err).__name__ == "UnknownROSArgsError":  # its text is the list of them
        return f"unknown ROS arguments {err} (ros2 run amodal_ros amodal_node --help)"
    text = str(err).splitlines()[0].split(", at ")[0]
    return text.removeprefix("failed to initialize rcl: ")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def node_help() -> str:
    """`amodal_node --help`: how to run it and every parameter with its default (the
    descriptions: config/amodal_node.yaml, or `ros2 param describe` on a running node)."""
    lines = [
        "usage: ros2 run amodal_ros amodal_node --ros-args [--params-file FILE] "
        "[-p NAME:=VALUE ...] [-r FROM:=TO ...]",
        "",
        "A lifecycle node: amodal masks of the objects in an instance-label topic. Parameters "
        "(defaults; meanings in config/amodal_node.yaml):",
    ]
    lines += [f"  {name}: {default!r}" for name, default, _ in parameter_specs()]
    return "\n".join(lines)


def main(args=None) -> int:
    """`ros2 run amodal_ros amodal_node`: spin the node until shutdown; the exit code."""
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException

    from amodal_ros.core.imports import quiet_libraries

    argv = sys.argv if args is None else args
    ours = argv[1 : argv.index("--ros-args")] if "--ros-args" in argv else argv[1:]
    if {"-h", "--help"} & set(ours):  # it started the node, which a DDS neighbour could drive
        print(node_help(), flush=True)
        return 0
    missing = missing_params_files(argv)
    if missing:  # rclpy would end in a traceback ("Couldn't parse params file")
        print(f"amodal_node: no such params file: {', '.join(missing)}", flush=True)
        return 1
    limit_malloc_arenas()  # before rclpy starts DDS threads
    # before configure loads torch, diffusers and torchao (this module does not, so that
    # --help answers at once): what they print while importing (kernels this machine cannot
    # load, deprecations) is no problem of the node's
    quiet_libraries()
    # SIGTERM (docker stop, systemd) stops as SIGINT does, also inside a long configure or an
    # engine build, which it left running (rclpy's handler only shuts the context down and
    # calls this one, installed before it)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        rclpy.init(args=args)
    except RuntimeError as err:  # rcl's RCLError, UnknownROSArgsError: a traceback before
        print(f"amodal_node: invalid arguments: {arguments_error(err)}", flush=True)
        return 1
    node = None
    try:
        node = AmodalNode(params_files=params_files(argv))
        # a lifecycle `shutdown` ends the process (it spun on, finalized, and a launch file's
        # respawn never fired); the transition's answer is sent inside its spin
        while rclpy.ok() and not node.finalized:
            rclpy.spin_once(node, timeout_sec=0.5)
        if node.finalized:
            node.get_logger().info("finalized: exiting")
    except ParameterException as err:  # e.g. a YAML value outside the declared range
        print(f"amodal_node: invalid parameter: {parameter_error(err)}", flush=True)
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # Ctrl-C shuts the context down from the signal handler; an executor that was just
        # building its wait set then raises RCLError instead of ExternalShutdownException.
        # That is a clean stop; anything raised while the context is still valid is not.
        if rclpy.ok():
            raise
    finally:
        # the way out is short (SHUTDOWN_WAIT_S at most for a running window); a second Ctrl-C
        # (or SIGTERM) inside it interrupted the cleanup, and with the window's thread inside
        # torch the interpreter aborted (SIGABRT, "terminate called without an active
        # exception")
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if node is not None:
            node.destroy_node(ending=True)
        rclpy.try_shutdown()
        if node is not None and node.abandoned_window:
            # the window's thread is inside torch: the interpreter's own exit would abort
            # (SIGABRT, "terminate called without an active exception"), so leave now
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
