"""Cross-device negatives done fully: two CPU processes (torchrun, gloo) with ``negatives_cross_device``
give the loss and gradients of one process holding both halves of the batch, for dense + sparse + ColBERT
with in-batch negatives (m3-unified with self-distillation), without and with GradCache chunking.

Run as a script by torchrun, this file is the worker: it trains one micro-batch on its half and saves
the loss (averaged over ranks, as the trainer logs it) and the DDP-averaged gradients.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

GROUP = 3
HALF = 3  # queries per rank
TOPICS = ["the Yangtze river", "Beijing", "machine learning", "长江", "红楼梦", "天气", "BGE-M3 retrieval"]


def half_batch_groups(first: int, count: int) -> list:
    """Groups ``first .. first+count-1`` of the global batch; passage lengths vary so ranks pad differently."""
    from bgekit.train.sampling import TrainGroup

    out = []
    for i in range(first, first + count):
        topic = TOPICS[i % len(TOPICS)]
        passages = [f"{topic} is described here{' in detail' * (1 + i % 3)}.",
                    f"{TOPICS[(i + 2) % len(TOPICS)]} has nothing to do with it.",
                    f"unrelated text number {i}" + " and more" * (i % 4)]
        out.append(TrainGroup(query=f"what about {topic}?", passages=passages[:GROUP]))
    return out


def one_step(model_dir: Path, groups: list, chunk_size: int, cross_device: bool, wrap=None):
    """(loss, gradients) of one m3-unified micro-batch on ``groups``."""
    from bgekit.models.embedder import Embedder
    from bgekit.plugins import get_registry
    from bgekit.train.collate import Collator
    from bgekit.train.gradcache import EmbedderChunks, GradCache
    from bgekit.train.trainer import LossTerm

    model = Embedder.from_pretrained(str(model_dir)).train()
    loss = LossTerm("m3-unified", get_registry().get("loss", "m3-unified").create(in_batch_negatives=True))
    batch = Collator(model.tokenizer, query_max_length=16, passage_max_length=40)(groups)
    wrapped = wrap(model) if wrap is not None else model
    engine = GradCache(chunk_size, EmbedderChunks([loss], cross_device=cross_device))
    no_sync = wrapped.no_sync if wrap is not None else None  # DDP all-reduces in the last chunk's backward only
    value, _ = engine.micro_step(wrapped, batch, step=1, no_sync=no_sync, sync=True)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return value, grads


def worker(model_dir: Path, out_dir: Path) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    results = {}
    for chunk_size in (0, 2):
        loss, grads = one_step(model_dir, half_batch_groups(rank * HALF, HALF), chunk_size, cross_device=True,
                               wrap=DistributedDataParallel)
        dist.all_reduce(loss)
        results[chunk_size] = {"loss": loss / dist.get_world_size(), "grads": grads}
    if rank == 0:
        torch.save(results, out_dir / "ddp.pt")
    dist.destroy_process_group()


def test_two_processes_with_cross_device_negatives_match_one_process_holding_both_halves(tmp_path):
    if not torch.distributed.is_available():
        import pytest

        pytest.skip("this torch has no torch.distributed")
    from bgekit.models.embedder import Embedder
    from bgekit.testing import tiny_encoder
    import json
    import warnings

    from test_gradcache import assert_same_gradients  # per-parameter relative error, noise-floored

    source = tiny_encoder(tmp_path / "tiny", seed=4)
    config = json.loads((source / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # no per-process randomness
    (source / "config.json").write_text(json.dumps(config))
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Embedder.from_pretrained(str(source), heads=[{"name": "dense"}, {"name": "sparse"},
                                                             {"name": "colbert"}])
    with torch.no_grad():
        model.heads["sparse"].linear.bias.fill_(0.5)  # sparse scores that matter from the start
    model_dir = tmp_path / "m3"
    model.save_pretrained(model_dir)

    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           __file__, str(model_dir), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)

    want_loss, want = one_step(model_dir, half_batch_groups(0, 2 * HALF), 0, cross_device=False)
    for chunk_size, got in ddp.items():
        assert float(got["loss"]) == pytest_approx(float(want_loss)), chunk_size
        assert_same_gradients(got["grads"], want, rel=1e-5)
    # the colbert and sparse heads are trained through other ranks' passages too (not only dense)
    assert want["heads.colbert.linear.weight"].norm() > 0 and want["heads.sparse.linear.weight"].norm() > 0


def pytest_approx(value: float):
    import pytest

    return pytest.approx(value, rel=1e-5, abs=1e-6)


if __name__ == "__main__":
    worker(Path(sys.argv[1]), Path(sys.argv[2]))
