"""Built-in device backends: Ascend NPU (torch_npu), CUDA, CPU.

Each backend imports its runtime lazily, so a machine without torch_npu or
CUDA loads this plugin fine and just reports those as unavailable.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from bgekit.api import DeviceBackend, DeviceSpec, hookimpl, local_rank


_MIB = 1024.0 * 1024.0


class CpuBackend(DeviceBackend):
    """Always there; fp32 by default (bf16 autocast works but is rarely faster)."""

    name = "cpu"
    distributed_backend = "gloo"
    autocast_dtypes = ("fp32", "bf16")

    def device(self, local_rank: int | None = None) -> Any:
        import torch

        return torch.device("cpu")

    def memory_stats(self) -> dict[str, float]:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mib = peak / _MIB if sys.platform == "darwin" else peak / 1024.0
        return {"peak_rss": peak_mib}

    def recipe_defaults(self) -> dict[str, Any]:
        return {"train": {"dtype": "fp32"}}


class _AcceleratorBackend(DeviceBackend):
    """What CUDA and Ascend share: ``torch.cuda`` and ``torch.npu`` (torch_npu) have the same interface."""

    #: the ``torch.device`` type
    device_type = ""

    def _module(self) -> Any:
        """``torch.cuda`` or ``torch.npu``."""
        raise NotImplementedError

    def device(self, rank: int | None = None) -> Any:
        import torch

        index = local_rank() if rank is None else rank
        self._module().set_device(index)
        return torch.device(self.device_type, index)

    def device_count(self) -> int:
        return self._module().device_count()

    def ddp_options(self, device: Any) -> dict[str, Any]:
        return {"device_ids": [device.index]}

    def process_group_options(self, device: Any) -> dict[str, Any]:
        return {"device_id": device}  # binds the group to this process's device (no guessing by rank)

    def rng_state(self) -> dict[str, Any]:
        module = self._module()
        if not module.is_initialized():  # nothing ran on it: do not start the runtime just to save a state
            return {}
        return {str(index): state for index, state in enumerate(module.get_rng_state_all())}

    def set_rng_state(self, state: dict[str, Any]) -> None:
        module = self._module()
        count = module.device_count()
        for key, tensor in state.items():
            if int(key) < count:  # saved on a machine with more devices: those are not used here
                module.set_rng_state(tensor, int(key))

    def memory_stats(self) -> dict[str, float]:
        module = self._module()
        return {
            "allocated": module.memory_allocated() / _MIB,
            "peak_allocated": module.max_memory_allocated() / _MIB,
            "reserved": module.memory_reserved() / _MIB,
        }

    def reset_peak_memory(self) -> None:
        self._module().reset_peak_memory_stats()

    def empty_cache(self) -> None:
        self._module().empty_cache()

    def synchronize(self) -> None:
        self._module().synchronize()

    def device_info(self, device: Any) -> dict[str, str]:
        return {"name": self._module().get_device_name(device)}


class CudaBackend(_AcceleratorBackend):
    """NVIDIA GPUs: nccl, bf16 where the card supports it, else fp16; fused AdamW, pinned batches."""

    name = "cuda"
    device_type = "cuda"
    distributed_backend = "nccl"
    pin_memory = True

    def _module(self) -> Any:
        import torch

        return torch.cuda

    @property
    def autocast_dtypes(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("bf16", "fp16", "fp32") if self._module().is_bf16_supported() else ("fp16", "fp32")

    def optimizer_options(self) -> dict[str, Any]:
        return {"fused": True}


class AscendBackend(_AcceleratorBackend):
    """Huawei Ascend NPUs through torch_npu: hccl, bf16 (Atlas A2 and later) and fp16.

    AdamW runs unfused: ``fused=True`` needs a ``_fused_adamw_`` kernel that
    torch_npu does not promise for every release (its own ``NpuFusedAdamW`` is a
    separate optimizer class). Batches are not pinned: recent torch_npu pins
    through its host caching allocator, but older releases paired with
    torch 2.2 are not known to, and it is unchecked on Ascend hardware here.
    """

    name = "ascend"
    device_type = "npu"
    distributed_backend = "hccl"

    @staticmethod
    def _npu() -> Any:
        import torch
        import torch_npu  # noqa: F401  (registers torch.npu)

        return torch.npu

    def _module(self) -> Any:
        return self._npu()

    @property
    def autocast_dtypes(self) -> tuple[str, ...]:  # type: ignore[override]
        supported = getattr(self._npu(), "is_bf16_supported", lambda: True)
        return ("bf16", "fp16", "fp32") if supported() else ("fp16", "fp32")


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def ascend_available() -> bool:
    if importlib.util.find_spec("torch_npu") is None:
        return False
    try:
        return bool(AscendBackend._npu().is_available())
    except Exception:
        return False


@hookimpl
def bgekit_device_backends():
    yield DeviceSpec(name="ascend", priority=30, is_available=ascend_available,
                     factory=AscendBackend, summary="Huawei Ascend NPU via torch_npu (hccl)")
    yield DeviceSpec(name="cuda", priority=20, is_available=cuda_available,
                     factory=CudaBackend, summary="NVIDIA GPU (nccl)")
    yield DeviceSpec(name="cpu", priority=0, is_available=lambda: True,
                     factory=CpuBackend, summary="CPU (gloo), always available")
