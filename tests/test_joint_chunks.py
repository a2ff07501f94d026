"""GradCache for the joint task (bgekit.train.joint_chunks): a chunked step leaves the whole-batch step's gradients.

As in tests/test_gradcache.py: with dropout off the reference is the plain step (``JointModel.forward(batch)``
and the joint loss, one backward); with dropout on it is the same chunks forwarded WITH a graph in the same
order from the same seed (the same masks), one loss, one backward, which GradCache only matches when its
second pass replays each chunk's random state, the reranker's included (checked too). The models run in
float64 so summation order does not blur the comparison of the tiny random models' small gradients.
"""

from __future__ import annotations

import contextlib
import copy
import json
import types
from pathlib import Path

import pytest
import torch

from bgekit.models.cross_encoder import CrossEncoder
from bgekit.models.embedder import Embedder
from bgekit.testing import tiny_cross_encoder, tiny_encoder
from bgekit.train import gradcache
from bgekit.train.embedder_task import embedder_collator
from bgekit.train.gradcache import cached_step, plain_step
from bgekit.train.joint_chunks import JointChunk, JointChunks
from bgekit.train.joint_task import JointCollator, JointModel, JointSettings, joint_loss
from bgekit.train.reranker_task import RerankCollator
from bgekit.train.sampling import TrainGroup
from bgekit.train.trainer import LossTerm

from test_gradcache import GROUP, PASSAGES, QUERIES  # the same mixed English/Chinese texts

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def groups(n: int = 6, offset: int = 0) -> list[TrainGroup]:
    out = []
    for i in range(offset, offset + n):
        passages = [PASSAGES[(i + j * 3) % len(PASSAGES)] * (1 + (i + j) % 2) for j in range(GROUP)]
        out.append(TrainGroup(query=QUERIES[i % len(QUERIES)], passages=passages))
    return out


def set_dropout(directory, p: float) -> None:
    config = json.loads((directory / "config.json").read_text())
    config.update(hidden_dropout_prob=p, attention_probs_dropout_prob=p)
    (directory / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return (tiny_encoder(tmp_path_factory.mktemp("jc-encoder"), seed=5),
            tiny_cross_encoder(tmp_path_factory.mktemp("jc-reranker"), seed=6))


def joint_model(dirs, dropout: float) -> JointModel:
    """dense + colbert retriever heads (two heads' tensors per representation) and the reranker, in float64."""
    for directory in dirs:
        set_dropout(directory, dropout)
    torch.manual_seed(0)
    retriever = Embedder.from_pretrained(str(dirs[0]), heads=[{"name": "dense"}, {"name": "colbert"}])
    retriever.query_max_length, retriever.passage_max_length = 16, 40
    reranker = CrossEncoder.from_pretrained(str(dirs[1]), max_length=48, query_max_length=16)
    model = JointModel(retriever, reranker).double().train()
    with torch.no_grad():  # tiny random models score every passage alike (KL ~1e-8): spread their weights
        for name, weight in model.named_parameters():
            if weight.dim() == 2 and "embeddings" not in name:
                weight.normal_(0.0, 0.3)
    return model


def joint_batch(model: JointModel, n: int = 6, offset: int = 0):
    collate = JointCollator(embedder_collator(model.retriever), RerankCollator(model.reranker))
    return collate(groups(n, offset))


def joint_chunks(registry, **settings) -> JointChunks:
    contrastive = [LossTerm("infonce", registry.get("loss", "infonce").create(head="colbert"), 1.0)] \
        if settings.get("contrastive_weight", 0) > 0 else []
    rerank = registry.get("loss", "listwise-ce").create()
    return JointChunks(joint_loss(JointSettings(temperature=0.05, **settings), rerank, contrastive))


def gradients(model, prefix: str = "") -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None and n.startswith(prefix)}


def assert_same_gradients(got: dict, want: dict, rel: float = 1e-5) -> None:
    """Every parameter's gradient within ``rel`` of the reference, relative to its norm (floored at 1e-4 of
    the largest, for gradients that are exactly 0 up to rounding, e.g. attention key biases)."""
    assert set(got) == set(want) and want
    floor = 1e-4 * max(float(g.norm()) for g in want.values())
    for name in want:
        err = float((got[name] - want[name]).norm()) / max(float(want[name].norm()), floor)
        assert err <= rel, f"{name}: relative gradient error {err:.2e}"


def relative_distance(got: dict, want: dict) -> float:
    return float(torch.cat([(got[k] - want[k]).flatten() for k in want]).norm()
                 / torch.cat([want[k].flatten() for k in want]).norm())


def graph_through_chunks(model, task, batch, step, chunk_size, scale=1.0):
    """The reference with dropout on: chunk forwards WITH a graph, the full-batch loss, one backward."""
    reps = [task.forward(model, chunk) for chunk in task.chunks(batch, chunk_size)]
    total, _ = task.loss(model, batch, reps, step)
    (total * scale).backward()
    return total.detach()


# 6 queries, 18 passages, 18 pairs: chunks of 4 split every part unevenly (4+2, 4*4+2, 4*4+2), chunks of 6
# evenly (6, 3*6, 3*6), chunks of 1 into single texts and pairs
CASES = [pytest.param(4, {}, id="chunk4"),
         pytest.param(6, {}, id="chunk6-divides"),
         pytest.param(1, {}, id="chunk1"),
         pytest.param(4, {"distill_to_reranker": False}, id="chunk4-detached-target"),
         pytest.param(5, {"contrastive_weight": 0.5}, id="chunk5-contrastive"),
         pytest.param(7, {"contrastive_weight": 0.3, "distill_to_reranker": False, "rerank_weight": 0.7,
                          "distill_weight": 2.0}, id="chunk7-contrastive-detached")]


@pytest.mark.parametrize("chunk_size,settings", CASES)
def test_chunked_joint_step_equals_the_whole_batch_step_without_dropout(dirs, bgekit_pm, chunk_size, settings):
    model = joint_model(dirs, dropout=0.0)
    batch = joint_batch(model)
    task = joint_chunks(bgekit_pm.registry, **settings)
    other = copy.deepcopy(model)
    want, want_parts = plain_step(model, task, batch, step=1)
    got, got_parts = cached_step(other, task, batch, step=1, chunk_size=chunk_size)
    assert float(got) == pytest.approx(float(want), rel=1e-6)  # both float32
    assert got_parts == pytest.approx(want_parts, rel=1e-10)
    if settings.get("contrastive_weight"):
        assert any(name.startswith("retriever/") for name in got_parts)
    grads = gradients(other)
    assert any(n.startswith("retriever.") for n in grads) and any(n.startswith("reranker.") for n in grads)
    assert_same_gradients(grads, gradients(model))


def test_the_plain_path_is_the_joint_loss_of_the_models_forward(dirs, bgekit_pm):
    """chunk_size 0: ``JointChunks.plain_loss`` is :func:`joint_loss` on ``JointModel.forward(batch)``'s scores and
    logits (the batch loss before GradCache), bit for bit."""
    model = joint_model(dirs, dropout=0.0)
    batch = joint_batch(model)
    settings = JointSettings(temperature=0.05, contrastive_weight=0.5)
    rerank = bgekit_pm.registry.get("loss", "listwise-ce").create()
    contrastive = [LossTerm("infonce", bgekit_pm.registry.get("loss", "infonce").create(), 1.0)]
    other = copy.deepcopy(model)
    a, a_parts = joint_loss(settings, rerank, contrastive)(*model(batch), batch, 2)
    b, b_parts = JointChunks(joint_loss(settings, rerank, contrastive)).plain_loss(other, batch, 2)
    a.backward()
    b.backward()
    assert torch.equal(a, b) and a_parts == b_parts
    for name, grad in gradients(model).items():
        assert torch.equal(grad, gradients(other)[name]), name


def test_detaching_the_distillation_target_changes_the_rerankers_gradient_chunked(dirs, bgekit_pm):
    """distill_to_reranker is honoured through the chunks (the equality tests above could not tell if it were
    ignored in both paths alike: this one would)."""
    model = joint_model(dirs, dropout=0.0)
    batch = joint_batch(model)
    runs = {}
    for to_reranker in (True, False):
        copy_ = copy.deepcopy(model)
        cached_step(copy_, joint_chunks(bgekit_pm.registry, distill_to_reranker=to_reranker), batch, 1, chunk_size=4)
        runs[to_reranker] = copy_
    assert relative_distance(gradients(runs[False], "reranker."), gradients(runs[True], "reranker.")) > 1e-3
    assert_same_gradients(gradients(runs[False], "retriever."), gradients(runs[True], "retriever."))


@pytest.mark.parametrize("settings", [{}, {"contrastive_weight": 0.5, "distill_to_reranker": False}])
def test_chunked_joint_step_replays_dropout_and_accumulates(dirs, bgekit_pm, settings):
    model = joint_model(dirs, dropout=0.1)
    task = joint_chunks(bgekit_pm.registry, **settings)
    batches = [joint_batch(model, 6, 0), joint_batch(model, 4, 3)]
    other = copy.deepcopy(model)
    torch.manual_seed(11)
    want = [graph_through_chunks(model, task, b, 1, chunk_size=4, scale=0.5) for b in batches]
    torch.manual_seed(11)
    got = [cached_step(other, task, b, step=1, chunk_size=4, scale=0.5)[0] for b in batches]
    assert [float(x) for x in got] == pytest.approx([float(x) for x in want], rel=1e-6)  # got: float32
    assert_same_gradients(gradients(other), gradients(model))


@pytest.mark.parametrize("unreplayed", ["retriever", "reranker"])
def test_without_replaying_either_models_random_state_the_gradients_differ(dirs, bgekit_pm, monkeypatch,
                                                                           unreplayed):
    """The dropout test above is sensitive to each model's masks: the second pass of the ``unreplayed`` model's
    chunks drawn from fresh random numbers instead (the other model's replayed) moves that model's gradients
    far off the reference."""
    model = joint_model(dirs, dropout=0.1)
    task = joint_chunks(bgekit_pm.registry)
    batch = joint_batch(model)
    other = copy.deepcopy(model)
    torch.manual_seed(11)
    graph_through_chunks(model, task, batch, 1, chunk_size=4)

    class Unreplayed(JointChunks):
        def forward(self, wrapped, chunk):
            if torch.is_grad_enabled():  # the second pass: draw the unreplayed model's masks afresh
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(1234)
                    fresh = self._run(wrapped, chunk, only=unreplayed)
                kept = self._run(wrapped, chunk, only="reranker" if unreplayed == "retriever" else "retriever")
                return type(fresh)(retriever=fresh.retriever if unreplayed == "retriever" else kept.retriever,
                                   reranker=fresh.reranker if unreplayed == "reranker" else kept.reranker)
            return wrapped(chunk=chunk)

        @staticmethod
        def _run(wrapped, chunk, only):
            part = JointChunk(retriever=chunk.retriever if only == "retriever" else None,
                              reranker=chunk.reranker if only == "reranker" else None)
            return wrapped(chunk=part)

    broken = Unreplayed(task.joint_loss)
    torch.manual_seed(11)
    cached_step(other, broken, batch, step=1, chunk_size=4)
    replayed = "reranker" if unreplayed == "retriever" else "retriever"
    assert relative_distance(gradients(other, unreplayed + "."), gradients(model, unreplayed + ".")) > 1e-2
    # a combined last chunk draws the retriever's masks first, so only a model run first keeps its replay intact
    if unreplayed == "reranker":
        assert_same_gradients(gradients(other, replayed + "."), gradients(model, replayed + "."))


def test_a_skipped_chunk_breaks_the_step(dirs, bgekit_pm):
    """Every chunk counts: dropping one pair chunk from the second pass leaves the reranker's gradients wrong."""
    model = joint_model(dirs, dropout=0.0)
    task = joint_chunks(bgekit_pm.registry)
    batch = joint_batch(model)
    other = copy.deepcopy(model)
    plain_step(model, task, batch, step=1)

    class SkipOne(JointChunks):
        def forward(self, wrapped, chunk):
            rep = wrapped(chunk=chunk)
            if torch.is_grad_enabled() and chunk.retriever is None and chunk.reranker["input_ids"].shape[0] == 4:
                self.skipped = getattr(self, "skipped", 0) + 1
                if self.skipped == 1:
                    rep.reranker = rep.reranker.detach().requires_grad_()  # its gradient reaches no parameter
            return rep

    cached_step(other, SkipOne(task.joint_loss), batch, step=1, chunk_size=4)
    assert relative_distance(gradients(other, "reranker."), gradients(model, "reranker.")) > 1e-3


def test_chunks_cover_the_batch_and_the_synchronising_chunk_runs_both_models(dirs, bgekit_pm):
    """Under DDP (no ``find_unused_parameters``) the pass outside ``no_sync`` must reach every parameter: the last
    chunk holds the retriever's last passages and the reranker's last pairs; every other runs under no_sync."""
    model = joint_model(dirs, dropout=0.0)
    task = joint_chunks(bgekit_pm.registry)
    batch = joint_batch(model)  # 6 queries, 18 passages, 18 pairs
    chunks = task.chunks(batch, 4)
    sizes = [(c.retriever["input_ids"].shape[0] if c.retriever is not None else 0,
              c.reranker["input_ids"].shape[0] if c.reranker is not None else 0) for c in chunks]
    assert sizes == [(4, 0), (2, 0)] + [(4, 0)] * 4 + [(0, 4)] * 4 + [(2, 2)]
    assert task.texts(batch) == 6 + 18

    ran, in_no_sync = [], []

    @contextlib.contextmanager
    def no_sync():
        in_no_sync.append(True)
        try:
            yield
        finally:
            in_no_sync.pop()

    through_wrapper = []
    model.register_forward_hook(lambda module, args, out: through_wrapper.append(torch.is_grad_enabled()))
    for name in ("retriever", "reranker"):
        getattr(model, name).register_forward_hook(
            lambda module, args, out, name=name: ran.append((name, torch.is_grad_enabled(), bool(in_no_sync))))
    cached_step(model, task, batch, 1, chunk_size=4, no_sync=no_sync, sync=True)
    synced = {name for name, grad, quiet in ran if grad and not quiet}
    assert synced == {"retriever", "reranker"}
    assert sum(1 for _, grad, quiet in ran if grad and quiet) == len(chunks) - 1
    assert through_wrapper == [False] * len(chunks) + [True] * len(chunks)  # every forward through __call__


# -- through the trainer (``bgekit run``'s path) ------------------------------------------------------------------
def without_dropout(directory):
    set_dropout(directory, 0.0)
    return directory


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory):
    """A tiny retriever and reranker with dropout (resume must replay both models' masks)."""
    return (tiny_encoder(tmp_path_factory.mktemp("jr-encoder"), seed=7),
            tiny_cross_encoder(tmp_path_factory.mktemp("jr-reranker"), seed=8))


@pytest.fixture(scope="module")
def run_dirs_no_dropout(tmp_path_factory):
    return (without_dropout(tiny_encoder(tmp_path_factory.mktemp("jn-encoder"), seed=7)),
            without_dropout(tiny_cross_encoder(tmp_path_factory.mktemp("jn-reranker"), seed=8)))


def joint_recipe(tmp_path, models, out: str, **train):
    from test_trainer_chunks import data_file

    values = {
        "task": "joint", "output_dir": str(tmp_path / out), "seed": 5,
        "model": {"name_or_path": str(models[0]), "query_max_length": 16, "passage_max_length": 24},
        "reranker": {"name_or_path": str(models[1]), "max_length": 40, "query_max_length": 16},
        "data": {"train": str(data_file(tmp_path)), "group_size": 4, "format": "auto"},
        "joint": {"temperature": 0.05, "contrastive_weight": 0.5, "negative_max_preference": 1.0},
        "loss": {"name": "infonce", "temperature": 0.05},
        "train": {"max_steps": 3, "batch_size": 4, "learning_rate": 2e-3, "warmup_ratio": 0.0,
                  "logging_steps": 1, "dtype": "fp32", "save_steps": 0, "max_grad_norm": 1e6, **train},
        "callbacks": [{"name": "jsonl-logger"}],
    }
    return types.SimpleNamespace(values=values, path=tmp_path / "recipe.yaml", save=lambda out: None)


def run_joint(recipe) -> dict:
    from bgekit.train import joint_task
    from test_trainer_chunks import cpu

    return joint_task.run(recipe, cpu(), show_progress=False)


def both_weights(summary: dict) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {f"{part}.{k}": v for part in ("retriever", "reranker")
            for k, v in load_file(str(Path(summary[f"{part}_dir"]) / "model.safetensors")).items()}


def test_a_joint_recipe_with_chunk_size_trains_as_the_unchunked_one(tmp_path, run_dirs_no_dropout, bgekit_pm,
                                                                   monkeypatch):
    """Chunks of 3 (queries 3+1, passages 5*3+1, pairs 5*3+1) and of 1, two accumulated micro-batches, three
    AdamW steps, no dropout: both models' weights equal the unchunked run's to 1e-9 of their update.

    The models are made float64 for this: in float32, Adam's first steps (``g / (|g| + eps)``) turn rounding
    noise in the tiny random models' near-zero gradient entries into full-size updates, so even chunks of 100
    (one query chunk, one combined chunk) land 0.5% of the update away from the unchunked run, as far as
    chunks of 3; in float64 every chunking lands within 1e-11.
    """
    from bgekit.train import joint_task
    from safetensors.torch import load_file
    from test_trainer_chunks import logged

    build_retriever, build_reranker = joint_task.build_retriever, joint_task.build_reranker
    monkeypatch.setattr(joint_task, "build_retriever", lambda *a, **k: build_retriever(*a, **k).double())
    monkeypatch.setattr(joint_task, "build_reranker", lambda *a, **k: build_reranker(*a, **k).double())
    chunked_by = []
    chunks = JointChunks.chunks
    monkeypatch.setattr(JointChunks, "chunks", lambda self, batch, size: chunked_by.append(size) or chunks(
        self, batch, size))
    common = dict(batch_size=2, gradient_accumulation_steps=2)
    runs = {out: run_joint(joint_recipe(tmp_path, run_dirs_no_dropout, out, **train, **common))
            for out, train in (("whole", {}), ("chunk3", {"chunk_size": 3}), ("chunk1", {"chunk_size": 1}))}
    assert sorted(set(chunked_by)) == [1, 3]  # GradCache ran (the whole run did not chunk)
    whole = both_weights(runs["whole"])
    base = {f"{part}.{k}": v.double() for part, directory in zip(("retriever", "reranker"), run_dirs_no_dropout)
            for k, v in load_file(str(directory / "model.safetensors")).items()}
    for out in ("chunk3", "chunk1"):
        a, b = logged(tmp_path / "whole"), logged(tmp_path / out)
        assert [x["step"] for x in a] == [x["step"] for x in b] == [1, 2, 3]
        assert [x["loss"] for x in a] == pytest.approx([x["loss"] for x in b], rel=1e-6)  # logged as float32
        assert [x["grad_norm"] for x in a] == pytest.approx([x["grad_norm"] for x in b], rel=1e-6)
        chunked = both_weights(runs[out])
        assert chunked.keys() == whole.keys()
        for part in ("retriever.", "reranker."):
            names = [k for k in base if k.startswith(part) and k in whole]
            assert len(names) > 10
            update = torch.cat([(whole[k] - base[k]).flatten() for k in names])
            apart = torch.cat([(chunked[k] - whole[k]).flatten() for k in names])
            assert update.norm() > 0, f"{part}: training changed nothing"
            assert apart.norm() < 1e-9 * update.norm(), (out, part, float(apart.norm() / update.norm()))


def test_a_killed_chunked_joint_run_resumes_as_a_straight_one(tmp_path, run_dirs, bgekit_pm):
    """With dropout in both models: checkpoint at step 1, killed in step 2, resumed to step 2."""
    from bgekit.testing import registered_plugin
    from bgekit.train import checkpoint as ckpt
    from test_trainer_chunks import _KillAt

    common = dict(max_steps=2, save_steps=1, chunk_size=3)
    straight = run_joint(joint_recipe(tmp_path, run_dirs, "straight", **common))
    killed = joint_recipe(tmp_path, run_dirs, "killed", **common)
    with registered_plugin(_KillAt(2), name="kill-at-2", pm=bgekit_pm):
        with pytest.raises(KeyboardInterrupt):
            run_joint(killed)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "killed")] == ["checkpoint-1"]
    killed.values["train"]["resume_from"] = "latest"
    resumed = run_joint(killed)
    assert resumed["steps"] == 2
    a, b = both_weights(straight), both_weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)


def test_out_of_memory_retries_a_joint_step_in_halved_chunks_like_a_run_chunked_from_the_start(
        tmp_path, run_dirs, bgekit_pm, monkeypatch):
    """4 queries + 16 passages (the retriever's 20 texts) and 16 pairs: unchunked, the 16 passages run out;
    chunks of 10 (half of 20) too; chunks of 5 fit. The retried step restores the random state, so both
    models' dropout draws what a run with chunk_size 5 from the start draws."""
    from bgekit.train import checkpoint as ckpt
    from test_trainer_chunks import fail_above

    def recipe(out, **train):
        r = joint_recipe(tmp_path, run_dirs, out, max_steps=2, **train)
        r.values["joint"]["score_batch_size"] = 4  # the starting reranker's denoising pass fits
        return r

    reference = run_joint(recipe("reference", chunk_size=5))
    sizes = fail_above(monkeypatch, 5)  # the reranker's encoder is an XLM-R model too
    retried = run_joint(recipe("retried"))
    # step 1: queries 4 then passages 16 run out; queries 4, passages 10 too; then chunks of 5: the
    # retriever's 4 + 5 + 5 + 5, the reranker's 5 + 5 + 5, the last chunk's 1 passage and 1 pair
    assert sizes[:15] == [4, 16, 4, 10] + [4, 5, 5, 5, 5, 5, 5, 1, 1] + [4, 5] and max(sizes[4:]) == 5
    a, b = both_weights(reference), both_weights(retried)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    state, _ = ckpt.load_trainer_state(Path(retried["last_checkpoint"]), 0)
    assert state["chunk_size"] == 5


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch has no torch.distributed")
def test_two_processes_under_torchrun_train_a_chunked_joint_recipe_like_one(tmp_path):
    """DDP (gloo, no ``find_unused_parameters``): each rank's chunks run under ``no_sync`` but the last, which
    runs both models, so the synchronising backward pass reaches every parameter; the update is the single
    process's that accumulates the same two micro-batches. Without the combined last chunk the first step fails
    (the retriever's parameters get no gradient in the synchronising pass)."""
    import sys

    import yaml
    from safetensors.torch import load_file
    from test_distributed import ROWS, bgekit_run

    models = [without_dropout(tiny_encoder(tmp_path / "retriever-base", seed=2)),
              without_dropout(tiny_cross_encoder(tmp_path / "reranker-base", seed=3))]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("# yaml-language-server: $schema=x\n" + yaml.safe_dump({
        "task": "joint", "output_dir": str(tmp_path / "unused"), "seed": 3,
        "model": {"name_or_path": str(models[0]), "query_max_length": 16, "passage_max_length": 24},
        "reranker": {"name_or_path": str(models[1]), "max_length": 40, "query_max_length": 16},
        "data": {"train": str(data), "group_size": 3},
        # contrastive_weight: the retriever also learns from infonce (its in-batch negatives are one rank's batch, as
        # one micro-batch of the single process), so its gradient is not only the tiny random models' ~1e-8 KL,
        # which rounding noise (amplified by Adam's first step) would dominate
        "joint": {"temperature": 0.05, "negative_max_preference": 1.0, "contrastive_weight": 1.0},
        "train": {"max_steps": 2, "batch_size": 2, "learning_rate": 1e-3, "warmup_ratio": 0.0,
                  "logging_steps": 1, "dtype": "fp32", "chunk_size": 2},
        "callbacks": [{"name": "jsonl-logger"}]}))
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    bgekit_run([sys.executable], recipe, f"output_dir={single}", "train.gradient_accumulation_steps=2")
    bgekit_run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
               recipe, f"output_dir={ddp}")
    for part, base_dir in zip(("retriever", "reranker"), models):
        base, one, two = (load_file(str(d / "model.safetensors")) for d in (base_dir, single / part, ddp / part))
        names = [k for k in base if k in one and k != "classifier.out_proj.bias"]
        update = torch.cat([(one[k] - base[k]).flatten() for k in names])
        apart = torch.cat([(two[k] - one[k]).flatten() for k in names])
        assert update.norm() > 0, f"{part}: training changed nothing"
        assert apart.norm() < 0.01 * update.norm(), (part, float(apart.norm() / update.norm()))


def test_each_models_embedding_table_gradient_is_written_once_per_micro_batch(dirs, bgekit_pm):
    """As for one model (tests/test_gradcache.py): a dense (vocabulary x hidden) gradient per chunk is slow."""
    from bgekit.train.gradcache import input_embeddings

    model = joint_model(dirs, dropout=0.0)
    task = joint_chunks(bgekit_pm.registry)
    batch = joint_batch(model)
    writes = {"retriever": 0, "reranker": 0}
    for name in writes:
        input_embeddings(getattr(model, name)).weight.register_hook(
            lambda grad, name=name: writes.__setitem__(name, writes[name] + 1))
    cached_step(model, task, batch, step=1, chunk_size=4)
    assert len(task.chunks(batch, 4)) > 2 and writes == {"retriever": 1, "reranker": 1}
