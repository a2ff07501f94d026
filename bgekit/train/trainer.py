"""The training loop: plain PyTorch, every step visible in one function.

Per optimiser step: ``gradient_accumulation_steps`` micro-batches, each
forward under autocast (the recipe's dtype, checked against the device
backend), its loss divided by the accumulation count and back-propagated
(through a GradScaler for fp16); then gradient clipping, one AdamW step,
one scheduler step. Nothing else happens in between, except at logging,
checkpoint and evaluation steps (where ``best`` keeps the best model, see
:mod:`bgekit.train.best`) and negative refreshes (:mod:`bgekit.train.refresh`).

With ``train.chunk_size`` each micro-batch runs through GradCache
(:mod:`bgekit.train.gradcache`): forwarded in chunks, with the whole batch's
gradients. Batches come from :class:`~bgekit.train.loader.BatchLoader`
(``data.num_workers`` processes tokenise ahead of the model).

Faults (:mod:`bgekit.train.failures`, :mod:`bgekit.train.stop`,
:mod:`bgekit.train.oom`): a step that runs out of accelerator memory is run
again from the same random state with the chunk halved (kept from then on),
and counts as a failed batch when even one text per chunk does not fit; a step whose
loss or gradient norm is not finite is skipped (no optimizer or scheduler
step), counted and logged to ``errors.jsonl``; after SIGTERM/SIGINT the loop
saves a checkpoint at the next step boundary and stops. A resumed run whose
checkpoint is at the last step trains nothing and returns, so the task writes
its final model from those weights (a run killed while saving ``model/``).

Callbacks are pluggy plugins: the lifecycle hooks (``bgekit_on_run_start``,
``_step_end``, ``_checkpoint``, ``_evaluate_end``, ``_run_end``) are called
on every registered plugin. ``_step_end`` fires every ``logging_steps`` steps
and at the last step, with metrics averaged over those steps, so the loop
waits for the device only when it logs.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from bgekit.devices import DeviceBackend
from bgekit.errors import BgekitError
from bgekit.schema import section_schema
from bgekit.train import checkpoint as ckpt
from bgekit.train.batching import LengthGroupedBatcher, SamplerState
from bgekit.train.collate import TrainBatch
from bgekit.train import stop
from bgekit.train.distributed import ProcessContext
from bgekit.train.failures import FailedBatches, check_finite_weights
from bgekit.train.gradcache import ChunkedTask, PlainLoss, RandomState, cached_step, plain_step
from bgekit.train.loader import BatchLoader, default_num_workers
from bgekit.train.loss_terms import LossTerm  # noqa: F401 - tests and benchmarks import it from here
from bgekit.train.oom import halved_chunk, is_out_of_memory
from bgekit.train.sampling import GroupSampler
from bgekit.train.settings import schema_field, settings_from_section

TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


@dataclass
class TrainConfig:
    """The recipe's ``train`` section (plus the seed), with the values the loop uses.

    Every default is the recipe schema's (:mod:`bgekit.train.settings`).
    """

    epochs: float = schema_field("train", "epochs")
    max_steps: int = schema_field("train", "max_steps")
    batch_size: int = schema_field("train", "batch_size")
    learning_rate: float = schema_field("train", "learning_rate")
    weight_decay: float = schema_field("train", "weight_decay")
    warmup_ratio: float = schema_field("train", "warmup_ratio")
    warmup_steps: int = schema_field("train", "warmup_steps")
    lr_scheduler: str = schema_field("train", "lr_scheduler")
    gradient_accumulation_steps: int = schema_field("train", "gradient_accumulation_steps")
    max_grad_norm: float = schema_field("train", "max_grad_norm")
    dtype: str = schema_field("train", "dtype")
    gradient_checkpointing: bool = schema_field("train", "gradient_checkpointing")
    #: GradCache: texts (reranker: pairs; joint: either) per forward chunk; 0 = off (bgekit.train.gradcache)
    chunk_size: int = schema_field("train", "chunk_size")
    negatives_cross_device: bool = schema_field("train", "negatives_cross_device")
    logging_steps: int = schema_field("train", "logging_steps")
    save_steps: int = schema_field("train", "save_steps")
    save_total_limit: int = schema_field("train", "save_total_limit")
    resume_from: str | None = schema_field("train", "resume_from")
    max_failed_batches: int = schema_field("train", "max_failed_batches")
    #: the metric whose best model is kept (bgekit.train.best); the embedder task reads it
    select_best: str | None = schema_field("train", "select_best")
    #: the recipe's top-level ``seed``
    seed: int = field(default_factory=lambda: section_schema("seed")["default"])

    @classmethod
    def from_recipe(cls, values: dict[str, Any]) -> "TrainConfig":
        """From the recipe's ``train`` section and ``seed``; a key the loop does not know is refused."""
        seed = values.get("seed", section_schema("seed")["default"])
        return settings_from_section(cls, "train", values.get("train"), seed=int(seed))


#: ``(model, batch, step) -> (loss, named float parts)``: one micro-batch's forward pass and loss.
#: Each task passes its own (the embedder's and the reranker's are their GradCache adapter's ``plain_loss``).
BatchLoss = Callable[[torch.nn.Module, Any, int], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class RunInfo:
    """What lifecycle hooks receive as ``run``."""

    recipe: dict[str, Any]
    output_dir: Path
    is_main_process: bool = True
    rank: int = 0
    world_size: int = 1
    task: str = "embedder"
    #: the step training starts from (0 for a fresh run), set before the first step: loggers drop their
    #: lines after it, which a resumed run writes again
    resume_step: int | None = None


@dataclass
class TrainResult:
    steps: int
    epochs_done: float
    final_loss: float | None
    passages_per_s: float
    tokens_per_s: float
    seconds: float
    last_checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The part of every training task's summary that comes from the loop itself."""
        return {
            "last_checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
            "steps": self.steps,
            "epochs": self.epochs_done,
            "final_loss": self.final_loss,
            "passages_per_s": self.passages_per_s,
            "tokens_per_s": self.tokens_per_s,
            "train_seconds": self.seconds,
        }


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_dtype(name: str, backend: DeviceBackend) -> str:
    """The autocast dtype: the recipe's, or the backend's first choice for ``auto``."""
    supported = tuple(backend.autocast_dtypes) or ("fp32",)
    if name == "auto":
        return supported[0]
    if name != "fp32" and name not in supported:
        raise BgekitError(f"train.dtype: {name} is not supported on device '{backend.name}' "
                          f"(supported: {', '.join(supported)}); use train.dtype=auto")
    return name


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: decay on weight matrices, none on biases and norm weights."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim < 2 or "norm" in name.lower():
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def all_parameters(model: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
    """One clipping group: every parameter of ``model`` under one shared norm."""
    return [list(model.parameters())]


def clip_gradients(groups: Sequence[Sequence[torch.nn.Parameter]], max_norm: float) -> torch.Tensor:
    """Clip each group's gradients to ``max_norm`` on its own; return the norm over all of them before
    clipping (what one shared clip would report, so logged ``grad_norm`` means the same either way)."""
    norms = [torch.nn.utils.clip_grad_norm_(group, max_norm) for group in groups]
    return torch.linalg.vector_norm(torch.stack(norms))


class Trainer:
    """Trains ``model`` on groups drawn by ``sampler`` in batches from ``batcher``.

    The loop knows no task: ``batch_loss`` (the task's forward pass and loss of one micro-batch) and
    ``chunked`` (its GradCache adapter, or None when the task cannot be chunked) come from the task.
    """

    def __init__(self, *, model: torch.nn.Module, batch_loss: BatchLoss, sampler: GroupSampler,
                 batcher: LengthGroupedBatcher, collator: Callable[[Sequence[Any]], Any], config: TrainConfig,
                 backend: DeviceBackend, process: ProcessContext, run: RunInfo, plugin_manager: Any,
                 restore_model: Callable[[Path], None] | None = None,
                 evaluator: Callable[[torch.nn.Module, int], dict[str, float]] | None = None,
                 evaluate_every: int = 0, show_progress: bool = True, log_lines: bool = False,
                 best: Any = None,
                 refresh: Callable[[torch.nn.Module, int, int], None] | None = None, refresh_every: int = 0,
                 optimizer_groups: Callable[[torch.nn.Module, float], list[dict[str, Any]]] | None = None,
                 clip_groups: Callable[[torch.nn.Module], list[list[torch.nn.Parameter]]] | None = None,
                 chunked: ChunkedTask | None = None, num_workers: int | str = 0) -> None:
        #: how this task's micro-batches split into GradCache chunks (None: they cannot be chunked)
        self.chunked = chunked
        if config.chunk_size > 0 and chunked is None:
            raise BgekitError(f"train.chunk_size is not supported by the {run.task} task; set train.chunk_size=0")
        if config.chunk_size < 0:
            raise BgekitError(f"train.chunk_size must be 0 (off) or a positive number of texts, "
                              f"not {config.chunk_size}")
        #: texts per forward chunk now: the recipe's, halved for the rest of the run after running out of memory
        self.chunk_size = config.chunk_size
        self.num_workers = default_num_workers(process.device) if num_workers == "auto" else int(num_workers)
        self.model = model
        #: the task's forward pass and loss of one micro-batch (unchunked)
        self.batch_loss = batch_loss
        self.sampler = sampler
        self.batcher = batcher
        self.collator = collator
        self.config = config
        self.backend = backend
        self.process = process
        self.run = run
        self.pm = plugin_manager
        self.restore_model = restore_model
        self.evaluator = evaluator
        self.evaluate_every = evaluate_every
        self.best = best  # a bgekit.train.best.BestModel when train.select_best is set
        self.refresh = refresh  # (model, step, epoch) -> None: re-mines negatives (miner.refresh_every)
        self.refresh_every = refresh_every
        #: (model, weight_decay) -> AdamW parameter groups; a group's own "lr" wins over train.learning_rate
        self.optimizer_groups = optimizer_groups or parameter_groups
        #: model -> parameter lists each clipped to train.max_grad_norm on its own (default: one list, all of them),
        #: so that one model's large gradients do not shrink another's updates when two train together
        self.clip_groups = clip_groups or all_parameters
        self.show_progress = show_progress and process.is_main
        self.log_lines = log_lines
        self.output_dir = Path(run.output_dir)
        self.dtype = resolve_dtype(config.dtype, backend)

        self.batches_per_epoch = batcher.batches_per_epoch()
        accumulation = config.gradient_accumulation_steps
        self.steps_per_epoch = max(1, self.batches_per_epoch // accumulation)
        if config.max_steps and config.max_steps > 0:
            self.total_steps = config.max_steps
        else:
            self.total_steps = max(1, math.ceil(config.epochs * self.steps_per_epoch))
        self.warmup_steps = config.warmup_steps or int(round(config.warmup_ratio * self.total_steps))

    # -- setup -------------------------------------------------------------
    def _build_optimizer(self, model: torch.nn.Module):
        from transformers import get_scheduler

        optimizer = torch.optim.AdamW(self.optimizer_groups(model, self.config.weight_decay),
                                      lr=self.config.learning_rate, **self.backend.optimizer_options())
        scheduler = get_scheduler(SCHEDULERS[self.config.lr_scheduler], optimizer,
                                  num_warmup_steps=self.warmup_steps, num_training_steps=self.total_steps)
        return optimizer, scheduler

    def _wrap(self) -> torch.nn.Module:
        model = self.model.to(self.process.device)
        if self.config.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        if self.process.distributed:
            from torch.nn.parallel import DistributedDataParallel

            return DistributedDataParallel(model, **self.backend.ddp_options(self.process.device))
        return model

    def _autocast(self):
        if self.dtype == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.process.device.type, dtype=TORCH_DTYPES[self.dtype])

    # -- one micro-batch ---------------------------------------------------
    def _micro_step(self, wrapped: torch.nn.Module, batch: Any, step: int, scale: float,
                    scaler: Any, sync: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward and backward of one micro-batch, whole or by GradCache chunks; under DDP, gradients are
        all-reduced only when ``sync`` (the step's last micro-batch; chunked: in its last chunk's backward)."""
        no_sync = wrapped.no_sync if self.process.distributed else None
        if self.chunk_size > 0:
            return cached_step(wrapped, self.chunked, batch, step, chunk_size=self.chunk_size,
                               autocast=self._autocast, scale=scale, scaler=scaler, no_sync=no_sync, sync=sync)
        return plain_step(wrapped, PlainLoss(self.batch_loss), batch, step, autocast=self._autocast, scale=scale,
                          scaler=scaler, no_sync=no_sync, sync=sync)

    def _run_step(self, wrapped: torch.nn.Module, batches: Sequence[Any], step: int, scaler: Any,
                  optimizer: Any) -> list[tuple[torch.Tensor, dict[str, float]]] | None:
        """Forward and backward of one optimiser step's micro-batches; their (loss, parts).

        Out of memory: free the cache, drop the partial gradients, restore the random state the step
        started from and run the same micro-batches again with the chunk halved (kept for the rest of
        the run), down to one text per chunk. None when even that does not fit (a failed batch).
        """
        start = RandomState.capture(self.process.device)
        while True:
            try:
                return [self._micro_step(wrapped, batch.to(self.process.device), step, 1.0 / len(batches), scaler,
                                         sync=micro == len(batches) - 1)
                        for micro, batch in enumerate(batches)]
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled, the rest re-raised
                if not is_out_of_memory(exc):
                    raise
                if self.process.distributed:  # the other ranks wait in a collective: no rank can retry alone
                    raise BgekitError(f"out of memory at step {step + 1} on rank {self.process.rank} "
                                      f"(train.chunk_size {self.chunk_size}); set a smaller train.chunk_size or "
                                      "train.batch_size and resume with train.resume_from=latest") from None
                texts = max(self.chunked.texts(batch) for batch in batches) if self.chunked is not None else 0
                smaller = halved_chunk(self.chunk_size, texts)
            # out of the except block: the error's traceback (and the activations it holds) is gone
            optimizer.zero_grad(set_to_none=True)
            self.backend.empty_cache()
            start.restore()
            if smaller < 1:
                return None
            if self.process.is_main:
                was = f"chunks of {self.chunk_size}" if self.chunk_size > 0 else "unchunked micro-batches"
                ckpt.warn(f"out of memory at step {step + 1} with {was}: retrying it, and training from here on, "
                          f"with train.chunk_size {smaller}")
            self.chunk_size = smaller

    # -- the loop ----------------------------------------------------------
    def train(self) -> TrainResult:
        cfg = self.config
        if self.process.is_main:
            ckpt.remove_stale_temps(self.output_dir)  # left by a run killed while saving
        wrapped = self._wrap()
        optimizer, scheduler = self._build_optimizer(self.model)
        scaler = torch.amp.GradScaler(self.process.device.type) if self.dtype == "fp16" else None
        state = SamplerState()
        failures = FailedBatches(self.output_dir, cfg.max_failed_batches, write=self.process.is_main,
                                 examples=getattr(self.sampler, "examples", ()))
        step = 0
        resume = ckpt.resolve_resume(cfg.resume_from, self.output_dir, rank=self.process.rank,
                                     warn=ckpt.warn if self.process.is_main else None)
        if resume is not None:
            step = self._resume(resume, optimizer, scheduler, scaler, state, failures)
        else:
            failures.resume_at(0, 0)
        self.run.resume_step = step
        if step > self.total_steps:
            raise BgekitError(f"{resume} is at step {step}, past the last step ({self.total_steps}) of this "
                              "recipe; raise train.max_steps or resume from an earlier checkpoint")
        if step == self.total_steps:
            # A run killed after its last checkpoint (e.g. while saving the final model): the weights are
            # all there, so the task only has to write its final model from them.
            if self.process.is_main:
                ckpt.warn(f"{resume} is at the last step ({step}); nothing left to train, writing the final "
                          "model from it")
            self.model.eval()
            return TrainResult(steps=step, epochs_done=round(state.epoch + state.position / max(
                1, self.batches_per_epoch), 4), final_loss=None, passages_per_s=0.0, tokens_per_s=0.0,
                seconds=0.0, last_checkpoint=resume)
        if self.process.is_main:  # fail now, not at the first save, when a user's folder is in the way
            ckpt.check_no_foreign(self.output_dir, [s for s in range(step + 1, self.total_steps + 1)
                                                    if s == self.total_steps or (cfg.save_steps
                                                                                 and s % cfg.save_steps == 0)])
        stream = BatchLoader(self.batcher, self.sampler, self.collator, num_workers=self.num_workers,
                             pin_memory=self.backend.pin_memory, with_indices=True).stream(state)

        history: list[dict[str, Any]] = []
        last_ckpt: Path | None = resume
        window = _Window()
        totals = _Window()
        started = time.perf_counter()
        progress = _Progress(self.total_steps, step, enabled=self.show_progress,
                             log_lines=self.process.is_main and self.log_lines)
        with progress, stop.deferred():
            while step < self.total_steps:
                served: list[int] = []
                batches = []
                for _ in range(cfg.gradient_accumulation_steps):
                    indices, batch = next(stream)
                    served.extend(indices)
                    window.add_batch(batch)
                    totals.add_batch(batch)
                    batches.append(batch)
                micro_losses = self._run_step(wrapped, batches, step, scaler, optimizer)
                del batches
                if micro_losses is None:  # out of memory even one text per chunk: nothing was updated
                    failures.record(step + 1, "out of memory (even with train.chunk_size 1)", None, None, served)
                    last_ckpt = self._stop_if_asked(step, optimizer, scheduler, scaler, state, failures, last_ckpt)
                    continue
                step_loss = torch.stack([loss for loss, _ in micro_losses]).sum()
                if scaler is not None:
                    scaler.unscale_(optimizer)
                grad_norm = clip_gradients(self.clip_groups(self.model),
                                           cfg.max_grad_norm if cfg.max_grad_norm > 0 else math.inf)
                # fp16: the GradScaler skips overflowing steps itself; only a non-finite loss counts there
                finite = torch.isfinite(step_loss) if scaler is not None else \
                    torch.isfinite(step_loss) & torch.isfinite(grad_norm)
                if not bool(self.process.all_reduce_min(finite)):  # one device sync per step
                    optimizer.zero_grad(set_to_none=True)  # skip the update: no optimizer or scheduler step
                    if scaler is not None:
                        scaler.update()
                    reason = "non-finite loss" if not bool(torch.isfinite(step_loss)) else \
                        "non-finite gradient norm"
                    failures.record(step + 1, reason, step_loss / cfg.gradient_accumulation_steps, grad_norm,
                                    served)
                    last_ckpt = self._stop_if_asked(step, optimizer, scheduler, scaler, state, failures, last_ckpt)
                    continue
                for loss, parts in micro_losses:
                    window.add_loss(loss / cfg.gradient_accumulation_steps, parts, cfg.gradient_accumulation_steps)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                window.steps += 1
                window.grad_norm = grad_norm

                if step % cfg.logging_steps == 0 or step == self.total_steps:
                    metrics = self._metrics(window, step, state, scheduler)
                    history.append(metrics)
                    self.pm.hook.bgekit_on_step_end(run=self.run, step=step, metrics=metrics)
                    progress.update(step, metrics)
                    window = _Window()
                else:
                    progress.update(step, None)
                if cfg.save_steps and step % cfg.save_steps == 0 and step != self.total_steps:
                    last_ckpt = self._save(step, optimizer, scheduler, scaler, state, failures) or last_ckpt
                if self.evaluator is not None and self.evaluate_every and step % self.evaluate_every == 0:
                    self._evaluate(step)
                if self.refresh is not None and self.refresh_every and step % self.refresh_every == 0 \
                        and step != self.total_steps:
                    self.refresh(self.model, step, state.epoch)
                    self.model.train()
                if step != self.total_steps:
                    last_ckpt = self._stop_if_asked(step, optimizer, scheduler, scaler, state, failures, last_ckpt)
            last_ckpt = self._save(step, optimizer, scheduler, scaler, state, failures) or last_ckpt
        seconds = time.perf_counter() - started
        self.model.eval()
        return TrainResult(
            steps=step,
            epochs_done=round(state.epoch + state.position / max(1, self.batches_per_epoch), 4),
            final_loss=history[-1]["loss"] if history else None,
            passages_per_s=round(totals.passages * self.process.world_size / seconds, 2),
            tokens_per_s=round(totals.tokens * self.process.world_size / seconds, 1),
            seconds=round(seconds, 2),
            last_checkpoint=last_ckpt,
            history=history,
        )

    def _stop_if_asked(self, step: int, optimizer, scheduler, scaler, state: SamplerState,
                       failures: FailedBatches, last_ckpt: Path | None) -> Path | None:
        """At a step boundary after SIGTERM/SIGINT: save a checkpoint (unless one is there) and stop."""
        signum = stop.requested()
        if self.process.distributed:  # every rank stops at the same step, or the collectives would hang
            flag = torch.tensor(float(signum or 0), device=self.process.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            signum = int(flag.item()) or None
        if not signum:
            return last_ckpt
        if last_ckpt is None or ckpt.checkpoint_step(last_ckpt) != step:
            last_ckpt = self._save(step, optimizer, scheduler, scaler, state, failures) or last_ckpt
        where = f"checkpoint saved to {last_ckpt}" if last_ckpt is not None else "nothing trained yet"
        raise stop.Stopped(f"stopped by {stop.signal_name(signum)} at step {step}/{self.total_steps}; {where}; re-run "
                           "the same command with train.resume_from=latest to continue", signum)

    def _metrics(self, window: "_Window", step: int, state: SamplerState, scheduler: Any) -> dict[str, Any]:
        self.backend.synchronize()
        elapsed = max(time.perf_counter() - window.started, 1e-9)
        loss = self.process.all_reduce_mean(window.loss_sum / max(1, window.steps)).item()
        metrics: dict[str, Any] = {
            "step": step,
            "epoch": round(state.epoch + state.position / max(1, self.batches_per_epoch), 4),
            "loss": round(loss, 6),
            **{k: round(v / max(1, window.part_count), 6) for k, v in window.parts.items()},
            "learning_rate": scheduler.get_last_lr()[0],
            "grad_norm": round(float(window.grad_norm), 4) if window.grad_norm is not None else None,
            "passages_per_s": round(window.passages * self.process.world_size / elapsed, 2),
            "tokens_per_s": round(window.tokens * self.process.world_size / elapsed, 1),
        }
        metrics.update({f"memory_{k}_mib": round(v, 1) for k, v in self.backend.memory_stats().items()})
        return metrics

    def _save(self, step: int, optimizer, scheduler, scaler, state: SamplerState,
              failures: FailedBatches) -> Path | None:
        check_finite_weights(self.model, f"checkpoint-{step}")
        trainer_state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "sampler": state.to_dict(),
            "total_steps": self.total_steps,
            "world_size": self.process.world_size,
            "failed_batches": failures.count,
            "chunk_size": self.chunk_size,
        }
        path = ckpt.save_checkpoint(self.output_dir, step, model=self.model, trainer_state=trainer_state,
                                    save_total_limit=self.config.save_total_limit,
                                    rank=self.process.rank, world_size=self.process.world_size,
                                    backend=self.backend)
        if path is not None:
            self.pm.hook.bgekit_on_checkpoint(run=self.run, step=step, path=str(path))
        return path

    def _resume(self, path: Path, optimizer, scheduler, scaler, state: SamplerState,
                failures: FailedBatches) -> int:
        trainer_state, rng = ckpt.load_trainer_state(path, self.process.rank)
        if trainer_state.get("world_size", 1) != self.process.world_size:
            raise BgekitError(f"{path} was saved by {trainer_state.get('world_size')} processes; "
                              f"resume it with the same number (now {self.process.world_size})")
        if self.restore_model is None:
            raise BgekitError("this task cannot resume: it has no way to reload model weights")
        try:
            self.restore_model(path / ckpt.MODEL_DIR)
        except BgekitError:
            raise
        except Exception as exc:  # noqa: BLE001 - any loader failure on a verified folder: say which checkpoint
            raise BgekitError(f"cannot load the model of {path} ({type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}); resume "
                              "from another checkpoint") from exc
        optimizer.load_state_dict(trainer_state["optimizer"])
        scheduler.load_state_dict(trainer_state["scheduler"])
        if scaler is not None and trainer_state.get("scaler"):
            scaler.load_state_dict(trainer_state["scaler"])
        state.epoch = int(trainer_state["sampler"]["epoch"])
        state.position = int(trainer_state["sampler"]["position"])
        ckpt.set_rng_states(rng, self.backend)
        step = int(trainer_state["step"])
        failures.resume_at(step, int(trainer_state.get("failed_batches", 0)))
        saved_chunk = int(trainer_state.get("chunk_size", 0))
        if saved_chunk > 0 and (self.chunk_size == 0 or saved_chunk < self.chunk_size):
            self.chunk_size = saved_chunk  # lowered after running out of memory: resume as the run went on
        return step

    def _evaluate(self, step: int) -> None:
        self.model.eval()  # no dropout: the numbers must be those of the weights (select_best saves them)
        with torch.no_grad():
            metrics = self.evaluator(self.model, step) if self.process.is_main else {}
        self.model.train()
        if self.process.is_main:
            self.pm.hook.bgekit_on_evaluate_end(run=self.run, step=step, metrics=metrics)
            if self.best is not None:
                self.best.offer(step, metrics, self.model)
        self.process.barrier()


class _Window:
    """Sums over the steps since the last log line."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.steps = 0
        self.loss_sum: Any = torch.zeros(())
        self.parts: dict[str, float] = {}
        self.part_count = 0
        self.grad_norm: Any = None
        self.passages = 0
        self.tokens = 0

    def add_batch(self, batch: TrainBatch) -> None:
        self.passages += batch.num_passages
        self.tokens += batch.num_tokens()

    def add_loss(self, loss: torch.Tensor, parts: dict[str, float], accumulation: int) -> None:
        self.loss_sum = self.loss_sum.to(loss.device) + loss
        for k, v in parts.items():
            self.parts[k] = self.parts.get(k, 0.0) + v / accumulation
        self.part_count += 1 / accumulation


class _Progress:
    """A rich progress bar with loss and throughput (rank 0 only)."""

    def __init__(self, total: int, done: int, enabled: bool, log_lines: bool = False) -> None:
        self.enabled = enabled
        self.log_lines = log_lines and not enabled  # no live bar (not a terminal): one line per log step
        self.total = total
        self.done = done
        self._bar = None

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"))
            self._bar.__enter__()
            self._task = self._bar.add_task("train", total=self.total, completed=self.done, info="")
        return self

    def update(self, step: int, metrics: dict[str, Any] | None) -> None:
        if self.log_lines and metrics is not None:
            import sys

            print(f"step {step}/{self.total}  loss {metrics['loss']:.4f}  lr {metrics['learning_rate']:.2e}  "
                  f"{metrics['passages_per_s']:.1f} passages/s  {metrics['tokens_per_s']:.0f} tokens/s",
                  file=sys.stderr, flush=True)
        if self._bar is None:
            return
        info = {}
        if metrics is not None:
            info["info"] = (f"loss {metrics['loss']:.4f}  {metrics['passages_per_s']:.0f} passages/s  "
                            f"{metrics['tokens_per_s']:.0f} tokens/s")
        self._bar.update(self._task, completed=step, **info)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
