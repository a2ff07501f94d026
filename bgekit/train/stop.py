"""SIGTERM and SIGINT: stop at the next step boundary with a checkpoint, so a preempted job resumes.

A cluster scheduler (SLURM, Kubernetes) sends SIGTERM before it kills a job;
Ctrl-C sends SIGINT. While :func:`deferred` is active (the training loop),
the handler only records the signal; the trainer checks :func:`requested` after
each optimizer step, saves a checkpoint there and raises :class:`Stopped`,
which ``bgekit run`` turns into exit status 143 (SIGTERM) or 130 (SIGINT).
Outside the loop (loading data and models) the signal stops the run at once.
A second Ctrl-C while waiting for the step to end stops at once too.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

from bgekit.errors import BgekitError

EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130}


class Stopped(BgekitError):
    """The run stopped on a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = EXIT_CODES.get(signum, 128 + int(signum))


_state: dict[str, Any] = {"signum": None, "deferring": False}


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def _handler(signum: int, frame: Any) -> None:
    if _state["deferring"] and _state["signum"] is None:
        _state["signum"] = signum
        return
    if _state["deferring"]:
        raise Stopped(f"stopped at once by a second {signal_name(signum)}, before the step ended; re-run the same "
                      "command with train.resume_from=latest to go on from the last checkpoint", signum)
    _state["signum"] = signum
    raise Stopped(f"stopped by {signal_name(signum)} before training began; re-run the same command to start "
                  "again", signum)


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    """Install the SIGTERM/SIGINT handlers for a run (main thread only); restore the old ones after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in EXIT_CODES}
    _state.update(signum=None, deferring=False)
    for s in EXIT_CODES:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        _state.update(signum=None, deferring=False)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside the block a first signal is only recorded (see :func:`requested`)."""
    previous = _state["deferring"]
    _state["deferring"] = True
    try:
        yield
    finally:
        _state["deferring"] = previous


def requested() -> int | None:
    """The signal received and not yet acted on, or None."""
    return _state["signum"]


def request(signum: int) -> None:
    """Ask the loop to stop as if ``signum`` had arrived (tests, and callbacks that want a clean stop)."""
    _state["signum"] = signum
