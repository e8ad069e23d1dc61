"""How the node's lifecycle transitions and the library's log lines reach the ROS log and
/diagnostics: rclpy turns a transition's exception into a silent ERROR, binds one severity to
each logging line, and a transition that blocks the executor for minutes left monitors
without a status.

`logged` and `reported` decorate AmodalNode's transitions; they read and set its `_idle`
(the status while not active) and `_doing` (the running transition), and call its
`_report`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import traceback

from rclpy.lifecycle import TransitionCallbackReturn

from amodal_ros.ros.diagnostics import ERROR, WARN


def log_at(ros_logger, level: int, text: str) -> None:
    """Log `text` at a Python logging level. rclpy binds one severity to each line of code that
    logs and raises ValueError when that line logs at another one: one line per severity."""
    if level >= logging.ERROR:
        ros_logger.error(text)
    elif level >= logging.WARNING:
        ros_logger.warning(text)
    elif level >= logging.INFO:
        ros_logger.info(text)
    else:
        ros_logger.debug(text)


class RosLogHandler(logging.Handler):
    """Routes the library's Python log records (e.g. a failed window) to the node's ROS log,
    so they reach /rosout with the node's name."""

    def __init__(self, ros_logger):
        super().__init__(level=logging.INFO)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        """Log the record's message, and the traceback of a `log.exception`."""
        log_at(self.ros_logger, record.levelno, f"{record.name}: {self.format(record)}")


def logged(transition):
    """Rclpy turns an exception in a transition into a silent ERROR; log it first (and
    report it on /diagnostics)."""

    @functools.wraps(transition)
    def wrapper(self, state):
        try:
            return transition(self, state)
        except Exception as err:
            failed = f"{transition.__name__} failed: {type(err).__name__}: {err}"
            self.get_logger().error(failed + "\n" + traceback.format_exc())
            self._idle = (ERROR, failed)
            return TransitionCallbackReturn.ERROR

    return wrapper


def reported(doing: str):
    """A transition that can block the executor for minutes (configure loads models, builds
    engines and runs the warm-up window; deactivate waits for a running window) still reports
    on /diagnostics, from a thread of its own: the executor's timer could not, and monitors
    marked the node stale."""

    def decorate(transition):
        @functools.wraps(transition)
        def wrapper(self, state):
            self._doing = (doing, time.monotonic())
            stop = threading.Event()
            period = self.get_parameter("diagnostics_period").value

            def beat() -> None:
                while not stop.wait(period):
                    try:
                        self._report()
                    except Exception as err:  # Ctrl-C shut the context down under a long load
                        if self.context.ok():
                            self.get_logger().warning(f"transition report stopped: {err}")
                        return

            reporter = threading.Thread(target=beat, name="amodal-transition-report", daemon=True)
            reporter.start()
            try:
                return transition(self, state)
            finally:
                stop.set()
                reporter.join()
                self._doing = None

        return wrapper

    return decorate


def in_transition(doing: str, since: float) -> tuple[int, str]:
    """The status of a transition blocking the executor: what it does, for how long."""
    return WARN, f"{doing} ({time.monotonic() - since:.0f} s so far)"
