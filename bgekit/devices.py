"""What a device backend supplies, and how the run picks one.

Concrete backends (cpu, cuda, ascend) are plugins; the core only knows this
interface and the rule: a recipe's ``device.name`` if set, else the available
backend with the highest priority (Ascend NPU > CUDA > CPU).
"""

from __future__ import annotations

import os
from typing import Any

from bgekit.errors import BgekitError
from bgekit.registry import DeviceSpec, Registry


class DeviceBackend:
    """One accelerator family. Subclasses override what differs; every default here is right for a CPU.

    The core asks the backend, never ``device.type``, for anything that
    depends on the hardware. The contract a backend (built-in or third-party)
    implements:

    - ``name``: as recipes write it (``device.name``); also the key its RNG
      state is saved under in a checkpoint.
    - ``distributed_backend``: the ``torch.distributed`` backend (``"nccl"``,
      ``"hccl"``, ``"gloo"``).
    - ``autocast_dtypes``: dtypes this device runs well, best first, from
      ``"bf16"``, ``"fp16"``, ``"fp32"``; the first is ``train.dtype: auto``.
    - ``pin_memory``: whether the data loader pins host batches (only where
      the copy to this device gains from it).
    - ``device(local_rank)``: this process's ``torch.device`` (and makes it
      current); ``device_count()``.
    - ``optimizer_options()``: extra ``torch.optim.AdamW`` keyword arguments
      (``{"fused": True}`` on CUDA).
    - ``ddp_options(device)``: extra ``DistributedDataParallel`` keyword
      arguments (``{"device_ids": [device.index]}`` on an accelerator).
    - ``process_group_options(device)``: extra
      ``torch.distributed.init_process_group`` keyword arguments
      (``{"device_id": device}`` binds the group to the accelerator).
    - ``rng_state()`` / ``set_rng_state(state)``: the accelerator's random
      states as ``{str: tensor}`` (only tensors, so a checkpoint loads with
      ``torch.load(weights_only=True)``); the CPU's own torch, Python and
      NumPy states are saved by the core, so a CPU backend returns ``{}``.
      ``set_rng_state`` gets back what ``rng_state`` returned, possibly on a
      machine with fewer devices.
    - ``memory_stats()``, ``reset_peak_memory()``, ``empty_cache()``,
      ``synchronize()`` (for honest timings), ``device_info(device)`` (the
      device's name for reports), ``recipe_defaults()``, ``describe()``.

    Random streams of a single accelerator device (GradCache replays a
    chunk's dropout) go through ``torch.<device.type>.get_rng_state`` /
    ``set_rng_state``, the interface torch and torch_npu give every device
    module, so a backend needs nothing more for that.
    """

    name = "base"
    #: torch.distributed backend for this device family
    distributed_backend = "gloo"
    #: autocast dtypes this device runs well, best first ("fp32" always works)
    autocast_dtypes: tuple[str, ...] = ("fp32",)
    #: whether the data loader pins host batches for the copy to this device
    pin_memory: bool = False

    def device(self, local_rank: int | None = None) -> Any:
        """The torch device for this process (``LOCAL_RANK`` under torchrun)."""
        raise NotImplementedError

    def device_count(self) -> int:
        return 1

    def optimizer_options(self) -> dict[str, Any]:
        """Extra ``torch.optim.AdamW`` keyword arguments (e.g. ``{"fused": True}``)."""
        return {}

    def ddp_options(self, device: Any) -> dict[str, Any]:
        """Extra ``DistributedDataParallel`` keyword arguments for a model on ``device``."""
        return {}

    def process_group_options(self, device: Any) -> dict[str, Any]:
        """Extra ``torch.distributed.init_process_group`` keyword arguments for this process's ``device``."""
        return {}

    def rng_state(self) -> dict[str, Any]:
        """The accelerator's random states as ``{str: tensor}``; ``{}`` when it has none (a CPU)."""
        return {}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`rng_state` returned (a checkpoint being resumed)."""

    def memory_stats(self) -> dict[str, float]:
        """Memory in MiB: ``allocated``, ``peak_allocated``, ``reserved`` where known."""
        return {}

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window."""

    def empty_cache(self) -> None:
        """Give cached device memory back."""

    def synchronize(self) -> None:
        """Wait for queued work (for honest timings)."""

    def device_info(self, device: Any) -> dict[str, str]:
        """What a report says about ``device``: its ``name`` (here the host CPU) and more where useful."""
        import platform

        import torch

        return {"name": platform.processor() or platform.machine(), "threads": str(torch.get_num_threads())}

    def recipe_defaults(self) -> dict[str, Any]:
        """Recipe values this device suggests, e.g. ``{"train": {"dtype": "bf16"}}``."""
        dtype = self.autocast_dtypes[0] if self.autocast_dtypes else "fp32"
        return {"train": {"dtype": dtype}}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "distributed_backend": self.distributed_backend,
                "autocast_dtypes": list(self.autocast_dtypes), "device_count": self.device_count()}


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def select_backend(registry: Registry, name: str = "auto") -> DeviceBackend:
    """The backend a run uses: the named one, or the best available."""
    if name and name != "auto":
        spec = registry.get("device", name)
        assert isinstance(spec, DeviceSpec)
        if not spec.is_available():
            raise BgekitError(
                f"device '{name}' was asked for but is not available here; "
                f"use device.name=auto or one of: {', '.join(available_devices(registry)) or 'none'}"
            )
        return spec.create()
    candidates = [s for s in registry.all("device") if isinstance(s, DeviceSpec) and s.is_available()]
    if not candidates:
        raise BgekitError("no device backend is available; is the built-in 'devices' plugin disabled?")
    best = max(candidates, key=lambda s: s.priority)
    return best.create()


def available_devices(registry: Registry) -> list[str]:
    specs = [s for s in registry.all("device") if isinstance(s, DeviceSpec)]
    return [s.name for s in sorted(specs, key=lambda s: -s.priority) if s.is_available()]
