"""The DataLoader input path serves exactly the inline stream's batches, and resumes exactly."""

from __future__ import annotations

import itertools

import pytest

from bgekit.data.example import Example
from bgekit.train.batching import LengthGroupedBatcher, SamplerState
from bgekit.train.loader import BatchLoader
from bgekit.train.sampling import GroupSampler


def _examples(n: int = 23) -> list[Example]:
    return [Example(query=f"query {i} " + "x" * (i % 7), pos=[f"positive {i}"],
                    neg=[f"negative {i}-{j}" for j in range(i % 4)]) for i in range(n)]


class _TextCollator:
    """Stands in for the tokenizing collator: keeps the texts so batches can be compared exactly."""

    def __call__(self, groups):
        return [(g.query, tuple(g.passages)) for g in groups]


def _inline(batcher, sampler, state, count):
    """What the trainer did before the loader: sample and collate on the training thread."""
    stream = batcher.stream(state)
    collate = _TextCollator()
    return [collate([sampler.sample(i, state.epoch) for i in next(stream)]) for _ in range(count)]


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_serves_the_inline_batches_across_epochs(workers):
    examples = _examples()
    batcher = LengthGroupedBatcher([len(e.query) for e in examples], 4, seed=3)
    sampler = GroupSampler(examples, 3, seed=3)
    per_epoch = batcher.batches_per_epoch()
    count = 2 * per_epoch + 2  # crosses two epoch boundaries

    expected_state = SamplerState()
    expected = _inline(batcher, sampler, expected_state, count)

    state = SamplerState()
    loader = BatchLoader(batcher, sampler, _TextCollator(), num_workers=workers)
    served = list(itertools.islice(loader.stream(state), count))

    assert served == expected
    assert (state.epoch, state.position) == (expected_state.epoch, expected_state.position) == (2, 2)
    # a different epoch draws different groups (the workers saw the epoch number)
    assert served[0] != served[per_epoch]


def test_loader_resumes_from_a_saved_position_with_workers():
    examples = _examples()
    batcher = LengthGroupedBatcher([len(e.query) for e in examples], 4, seed=5)
    sampler = GroupSampler(examples, 2, seed=5)
    whole = list(itertools.islice(BatchLoader(batcher, sampler, _TextCollator()).stream(SamplerState()), 9))

    state = SamplerState()
    loader = BatchLoader(batcher, sampler, _TextCollator(), num_workers=2, prefetch_factor=4)
    first = list(itertools.islice(loader.stream(state), 4))
    # the workers have prefetched further, but the state counts only what was handed out
    assert state.position == 4
    saved = SamplerState(**state.to_dict())
    rest = list(itertools.islice(BatchLoader(batcher, sampler, _TextCollator(), num_workers=2).stream(saved), 5))
    assert first + rest == whole


class _Pinnable:
    def __init__(self) -> None:
        self.pinned = False

    def pin_memory(self):
        self.pinned = True
        return self


def test_inline_loader_pins_batches_that_can_pin():
    examples = _examples(8)
    batcher = LengthGroupedBatcher([1] * len(examples), 2, seed=1)
    sampler = GroupSampler(examples, 2, seed=1)
    loader = BatchLoader(batcher, sampler, lambda groups: _Pinnable(), pin_memory=True)
    assert next(loader.stream(SamplerState())).pinned


def test_negative_worker_count_is_refused():
    with pytest.raises(ValueError, match="num_workers"):
        BatchLoader(LengthGroupedBatcher([1], 1), None, _TextCollator(), num_workers=-1)


def test_worker_errors_reach_the_training_process():
    examples = _examples(8)
    batcher = LengthGroupedBatcher([1] * len(examples), 2, seed=1)
    sampler = GroupSampler(examples, 2, seed=1)

    def broken(groups):
        raise RuntimeError("collate failed on purpose")

    with pytest.raises(RuntimeError, match="collate failed on purpose"):
        next(BatchLoader(batcher, sampler, broken, num_workers=1).stream(SamplerState()))


def _signal_dispositions(groups):
    import signal

    return [signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)]


def test_workers_leave_ctrl_c_and_sigterm_to_the_training_process():
    """A terminal's Ctrl-C (SLURM's SIGTERM) reaches the whole process group: a worker must not die of it
    mid-batch, or the trainer fails where it should save a checkpoint at the step boundary and stop."""
    import signal

    batcher = LengthGroupedBatcher([len(e.query) for e in _examples()], 4, seed=0)
    loader = BatchLoader(batcher, GroupSampler(_examples(), group_size=2, seed=0), _signal_dispositions,
                         num_workers=1)
    assert next(loader.stream(SamplerState())) == [signal.SIG_IGN, signal.SIG_IGN]
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # the training process still hears them



def _lock_files_open_here(groups):
    """(Runs in a worker.) The output-folder lock files this process has open."""
    import os

    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith(".bgekit.lock"):
                found.append(fd)
        except OSError:
            pass
    return found


def test_workers_do_not_hold_the_output_dir_lock(tmp_path):
    """A worker inherits the trainer's lock by fork; orphaned by a ``kill -9`` of the trainer it would keep the
    output folder locked for seconds, and the restarted run would be refused (a restart loop stops on it)."""
    from pathlib import Path

    from bgekit.train.output_lock import locked_output_dir

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to list a worker's open files")
    examples = _examples(8)
    with locked_output_dir(tmp_path / "out"):
        assert _lock_files_open_here([]), "the trainer itself holds the lock"
        loader = BatchLoader(LengthGroupedBatcher([1] * 8, 2), GroupSampler(examples, 2), _lock_files_open_here,
                             num_workers=1)
        assert next(loader.stream(SamplerState())) == []


LEFT_OPEN = """
from bgekit.data.example import Example
from bgekit.train.batching import LengthGroupedBatcher, SamplerState
from bgekit.train.loader import BatchLoader
from bgekit.train.sampling import GroupSampler

examples = [Example(query=f"q{i}", pos=[f"p{i}"], neg=[f"n{i}"]) for i in range(64)]
STREAM = BatchLoader(LengthGroupedBatcher([1] * 64, 2), GroupSampler(examples, 2), len, num_workers=1).stream(
    SamplerState())
next(STREAM)  # a live worker, and a stream nobody closes before the interpreter exits
print("ready", flush=True)
"""


def test_a_process_exits_with_a_loader_left_open():
    """Workers ignore SIGTERM, so multiprocessing's exit handler (terminate, then join) would wait for them
    for ever: a test run or a ``bgekit run`` that left a stream open hung after its last line."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", LEFT_OPEN], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ready" in done.stdout, done.stderr
