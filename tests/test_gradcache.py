"""GradCache (bgekit.train.gradcache): a chunked step leaves the gradients of the whole-batch step.

Two references. With dropout off, the plain step (the whole batch in one forward pass, what the trainer does
today). With dropout on, the same stochastic function with the graph kept: every chunk forwarded with grad,
in the same order from the same seed (so the same dropout masks), one loss, one backward. GradCache must match
it, which it only can if its second pass replays each chunk's random state (checked too).
"""

from __future__ import annotations

import contextlib
import copy
import json

import pytest
import torch

from bgekit.models.embedder import Embedder
from bgekit.models.cross_encoder import CrossEncoder
from bgekit.testing import tiny_cross_encoder, tiny_encoder
from bgekit.train import gradcache
from bgekit.train.collate import Collator
from bgekit.train.gradcache import EmbedderChunks, GradCache, RerankerChunks, cached_step, plain_step
from bgekit.train.reranker_task import RerankCollator
from bgekit.train.sampling import TrainGroup
from bgekit.train.trainer import LossTerm

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

GROUP = 3
QUERIES = ["where is the capital of china?", "longest river", "who wrote dream of the red chamber, the novel?",
           "机器学习是什么", "天气", "Beijing capital"]
PASSAGES = ["Beijing is the capital of the People's Republic of China.", "长江是中国最长的河流。",
            "Dream of the Red Chamber is one of the four great classical novels, by Cao Xueqin.",
            "机器学习是人工智能的一个分支", "今天天气很好，我们去公园散步吧！你觉得怎么样？", "river",
            "Chapter 1.", "Dense, sparse and multi-vector retrieval with BGE-M3 embeddings."]


def groups(n: int = 6, offset: int = 0) -> list[TrainGroup]:
    out = []
    for i in range(offset, offset + n):
        passages = [PASSAGES[(i + j * 3) % len(PASSAGES)] * (1 + (i + j) % 2) for j in range(GROUP)]
        out.append(TrainGroup(query=QUERIES[i % len(QUERIES)], passages=passages,
                              teacher_scores=[2.0 - 0.5 * j + 0.1 * i for j in range(GROUP)]))
    return out


def set_dropout(directory, p: float) -> None:
    config = json.loads((directory / "config.json").read_text())
    config.update(hidden_dropout_prob=p, attention_probs_dropout_prob=p)
    (directory / "config.json").write_text(json.dumps(config))


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return tiny_encoder(tmp_path_factory.mktemp("gc-encoder"), seed=5)


@pytest.fixture(scope="module")
def reranker_dir(tmp_path_factory):
    return tiny_cross_encoder(tmp_path_factory.mktemp("gc-reranker"), seed=6)


def embedder(directory, dropout: float) -> Embedder:
    set_dropout(directory, dropout)
    torch.manual_seed(0)
    model = Embedder.from_pretrained(str(directory), heads=[{"name": "dense"}, {"name": "sparse"},
                                                            {"name": "colbert"}])
    with torch.no_grad():  # the new sparse head starts near zero weights; make its scores matter
        model.heads["sparse"].linear.bias.fill_(0.5)
    return model.train()


def reranker(directory, dropout: float) -> CrossEncoder:
    """In float64: the tiny random reranker's gradients are ~1e-4 with heavy cancellation, where fp32
    rounding alone (a batch of 12 pairs against chunks of 5, no GradCache) moves some by 5e-4 relative."""
    set_dropout(directory, dropout)
    torch.manual_seed(0)
    return CrossEncoder.from_pretrained(str(directory), max_length=48, query_max_length=16).double().train()


def losses(registry, *entries: dict) -> list[LossTerm]:
    terms = []
    for entry in entries:
        params = {k: v for k, v in entry.items() if k not in ("name", "weight")}
        terms.append(LossTerm(entry["name"], registry.get("loss", entry["name"]).create(**params),
                              entry.get("weight", 1.0)))
    return terms


def graph_through_chunks(model, task, batch, step, chunk_size, scale=1.0):
    """The reference with dropout on: chunk forwards WITH a graph, the full-batch loss, one backward."""
    chunks = task.chunks(batch, chunk_size)
    reps = [task.forward(model, chunk) for chunk in chunks]
    total, _ = task.loss(model, batch, reps, step)
    (total * scale).backward()
    return total.detach()


def gradients(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_gradients(got: dict, want: dict, rel: float = 1e-5) -> None:
    """Every parameter's gradient within ``rel`` of the reference, relative to its norm.

    Attention key biases have an exact gradient of 0 (softmax ignores a constant shift), so what autograd
    leaves there is rounding noise; norms are floored at 1e-4 of the largest parameter gradient's norm.
    """
    assert set(got) == set(want) and want
    floor = 1e-4 * max(float(g.norm()) for g in want.values())
    for name in want:
        err = float((got[name] - want[name]).norm()) / max(float(want[name].norm()), floor)
        assert err <= rel, f"{name}: relative gradient error {err:.2e}"


M3_SELF_DISTILL = {"name": "m3-unified", "self_distill": True}
M3_TEACHER = {"name": "m3-unified", "self_distill": True, "kd_loss_type": "m3_kd_loss"}
INFONCE_KD = ({"name": "infonce", "head": "colbert"}, {"name": "kd", "head": "sparse", "weight": 0.5})


def embedder_batch(model, n=6, offset=0):
    collate = Collator(model.tokenizer, query_max_length=16, passage_max_length=40)
    return collate(groups(n, offset))


@pytest.mark.parametrize("entries", [(M3_SELF_DISTILL,), (M3_TEACHER,), INFONCE_KD],
                         ids=["m3-self-distill", "m3-teacher-scores", "infonce+kd"])
def test_chunked_embedder_step_equals_the_whole_batch_step_without_dropout(encoder_dir, bgekit_pm, entries):
    model = embedder(encoder_dir, dropout=0.0)
    batch = embedder_batch(model)
    task = EmbedderChunks(losses(bgekit_pm.registry, *entries))
    other = copy.deepcopy(model)
    want_loss, _ = plain_step(model, task, batch, step=1)
    got_loss, _ = cached_step(other, task, batch, step=1, chunk_size=4)  # queries 4+2, passages 4*4+2
    assert float(got_loss) == pytest.approx(float(want_loss), rel=1e-5)
    assert_same_gradients(gradients(other), gradients(model))


@pytest.mark.parametrize("entries", [(M3_SELF_DISTILL,), (M3_TEACHER,)], ids=["m3-self-distill", "m3-teacher"])
def test_chunked_embedder_step_replays_dropout_and_accumulates(encoder_dir, bgekit_pm, entries):
    model = embedder(encoder_dir, dropout=0.1)
    task = EmbedderChunks(losses(bgekit_pm.registry, *entries))
    batches = [embedder_batch(model, 6, 0), embedder_batch(model, 6, 3)]
    other = copy.deepcopy(model)
    torch.manual_seed(11)
    for step_batch in batches:  # two accumulated micro-batches, each scaled by 1/2
        graph_through_chunks(model, task, step_batch, 1, chunk_size=4, scale=0.5)
    torch.manual_seed(11)
    for step_batch in batches:
        cached_step(other, task, step_batch, step=1, chunk_size=4, scale=0.5)
    assert_same_gradients(gradients(other), gradients(model))


def test_without_replaying_random_state_dropout_makes_the_gradients_differ(encoder_dir, bgekit_pm, monkeypatch):
    """The dropout test above is sensitive: the same run without the replay is far off."""
    model = embedder(encoder_dir, dropout=0.1)
    task = EmbedderChunks(losses(bgekit_pm.registry, M3_SELF_DISTILL))
    batch = embedder_batch(model)
    other = copy.deepcopy(model)
    torch.manual_seed(11)
    graph_through_chunks(model, task, batch, 1, chunk_size=4)
    monkeypatch.setattr(gradcache.RandomState, "replay", lambda self: contextlib.nullcontext())
    torch.manual_seed(11)
    cached_step(other, task, batch, step=1, chunk_size=4)
    with pytest.raises(AssertionError, match="relative gradient error"):
        assert_same_gradients(gradients(other), gradients(model), rel=1e-3)


def test_grad_scaler_scales_the_cached_gradients(encoder_dir, bgekit_pm):
    model = embedder(encoder_dir, dropout=0.0)
    task = EmbedderChunks(losses(bgekit_pm.registry, M3_SELF_DISTILL))
    batch = embedder_batch(model)
    other = copy.deepcopy(model)
    cached_step(model, task, batch, step=1, chunk_size=5)
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    cached_step(other, task, batch, step=1, chunk_size=5, scaler=scaler)
    assert_same_gradients({k: v / 256.0 for k, v in gradients(other).items()}, gradients(model))


def test_only_the_last_chunk_of_the_synchronising_micro_batch_runs_outside_no_sync(encoder_dir, bgekit_pm):
    model = embedder(encoder_dir, dropout=0.0)
    task = EmbedderChunks(losses(bgekit_pm.registry, M3_SELF_DISTILL))
    batch = embedder_batch(model)
    entered = []

    @contextlib.contextmanager
    def no_sync():
        entered.append(True)
        yield

    engine = GradCache(4, task)
    engine.micro_step(model, batch, 1, no_sync=no_sync, sync=False)
    chunks = len(task.chunks(batch, 4))
    assert len(entered) == chunks
    entered.clear()
    engine.micro_step(model, batch, 1, no_sync=no_sync, sync=True)
    assert len(entered) == chunks - 1


def rerank_batch(model, n=4, offset=0):
    batch = RerankCollator(model)(groups(n, offset))
    batch.labels[:, 1] = 0.5  # graded: the listwise target spreads over two passages
    return batch


def test_chunked_reranker_step_equals_the_whole_batch_step_listwise(reranker_dir, bgekit_pm):
    model = reranker(reranker_dir, dropout=0.0)
    task = RerankerChunks(losses(bgekit_pm.registry, {"name": "listwise-ce"}))
    batch = rerank_batch(model)
    other = copy.deepcopy(model)
    want, _ = plain_step(model, task, batch, step=0)
    got, _ = GradCache(5, task).micro_step(other, batch, 0)  # 12 pairs: 5 + 5 + 2
    assert float(got) == pytest.approx(float(want), rel=1e-5)
    assert_same_gradients(gradients(other), gradients(model))


def test_chunked_reranker_step_replays_dropout_and_accumulates(reranker_dir, bgekit_pm):
    model = reranker(reranker_dir, dropout=0.1)
    task = RerankerChunks(losses(bgekit_pm.registry, {"name": "listwise-ce"}))
    batches = [rerank_batch(model, 4, 0), rerank_batch(model, 4, 2)]
    other = copy.deepcopy(model)
    torch.manual_seed(3)
    for batch in batches:
        graph_through_chunks(model, task, batch, 0, chunk_size=5, scale=0.5)
    torch.manual_seed(3)
    for batch in batches:
        cached_step(other, task, batch, step=0, chunk_size=5, scale=0.5)
    assert_same_gradients(gradients(other), gradients(model))


def test_chunk_size_must_not_be_negative():
    with pytest.raises(Exception, match="chunk_size"):
        GradCache(-1, RerankerChunks([]))


def test_composes_with_gradient_checkpointing_and_dropout(encoder_dir, bgekit_pm):
    model = embedder(encoder_dir, dropout=0.1)
    model.gradient_checkpointing_enable()
    task = EmbedderChunks(losses(bgekit_pm.registry, M3_SELF_DISTILL))
    batch = embedder_batch(model)
    other = copy.deepcopy(model)
    torch.manual_seed(5)
    graph_through_chunks(model, task, batch, 1, chunk_size=4)
    torch.manual_seed(5)
    cached_step(other, task, batch, step=1, chunk_size=4)
    assert_same_gradients(gradients(other), gradients(model))


def test_runs_under_bf16_autocast(encoder_dir, bgekit_pm):
    """The first pass, the loss and the second pass all run under the autocast context it is given."""
    model = embedder(encoder_dir, dropout=0.0)
    task = EmbedderChunks(losses(bgekit_pm.registry, M3_SELF_DISTILL))
    batch = embedder_batch(model)
    other = copy.deepcopy(model)

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16)

    with autocast():
        reps = model(features=task.chunks(batch, 4)[0])
    assert reps["sparse"].weights.dtype == torch.bfloat16  # so the context really changes the computation
    GradCache(0, task, autocast=autocast).micro_step(model, batch, 1)
    GradCache(4, task, autocast=autocast).micro_step(other, batch, 1)
    assert_same_gradients(gradients(other), gradients(model), rel=2e-2)  # bf16 rounding, chunked vs whole


def test_the_embedding_table_gradient_is_written_once_per_micro_batch(encoder_dir, bgekit_pm):
    """A dense (vocabulary x hidden) gradient per chunk is what made small chunks slow; one per step is enough."""
    model = embedder(encoder_dir, dropout=0.0)
    task = EmbedderChunks(losses(bgekit_pm.registry, M3_SELF_DISTILL))
    batch = embedder_batch(model)
    writes = []
    model.encoder.get_input_embeddings().weight.register_hook(lambda grad: writes.append(grad.shape))
    cached_step(model, task, batch, step=1, chunk_size=4)
    assert len(task.chunks(batch, 4)) > 2 and len(writes) == 1
