"""Built-in device backends: Ascend NPU (torch_npu), CUDA, CPU.

Each backend imports its runtime lazily, so a machine without torch_npu or
CUDA loads this plugin fine and just reports those as unavailable.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import bgekit
from bgekit.devices import DeviceBackend, local_rank
from bgekit.registry import DeviceSpec

__version__ = bgekit.__version__

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


class CudaBackend(DeviceBackend):
    """NVIDIA GPUs: nccl, bf16 where the card supports it, else fp16."""

    name = "cuda"
    distributed_backend = "nccl"

    @property
    def autocast_dtypes(self) -> tuple[str, ...]:  # type: ignore[override]
        import torch

        return ("bf16", "fp16", "fp32") if torch.cuda.is_bf16_supported() else ("fp16", "fp32")

    def device(self, rank: int | None = None) -> Any:
        import torch

        index = local_rank() if rank is None else rank
        torch.cuda.set_device(index)
        return torch.device("cuda", index)

    def device_count(self) -> int:
        import torch

        return torch.cuda.device_count()

    def memory_stats(self) -> dict[str, float]:
        import torch

        return {
            "allocated": torch.cuda.memory_allocated() / _MIB,
            "peak_allocated": torch.cuda.max_memory_allocated() / _MIB,
            "reserved": torch.cuda.memory_reserved() / _MIB,
        }

    def reset_peak_memory(self) -> None:
        import torch

        torch.cuda.reset_peak_memory_stats()

    def empty_cache(self) -> None:
        import torch

        torch.cuda.empty_cache()

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()


class AscendBackend(DeviceBackend):
    """Huawei Ascend NPUs through torch_npu: hccl, bf16 and fp16."""

    name = "ascend"
    distributed_backend = "hccl"
    autocast_dtypes = ("bf16", "fp16", "fp32")

    @staticmethod
    def _npu() -> Any:
        import torch
        import torch_npu  # noqa: F401  (registers torch.npu)

        return torch.npu

    def device(self, rank: int | None = None) -> Any:
        import torch

        npu = self._npu()
        index = local_rank() if rank is None else rank
        npu.set_device(index)
        return torch.device("npu", index)

    def device_count(self) -> int:
        return self._npu().device_count()

    def memory_stats(self) -> dict[str, float]:
        npu = self._npu()
        return {
            "allocated": npu.memory_allocated() / _MIB,
            "peak_allocated": npu.max_memory_allocated() / _MIB,
            "reserved": npu.memory_reserved() / _MIB,
        }

    def reset_peak_memory(self) -> None:
        self._npu().reset_peak_memory_stats()

    def empty_cache(self) -> None:
        self._npu().empty_cache()

    def synchronize(self) -> None:
        self._npu().synchronize()


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


@bgekit.hookimpl
def bgekit_device_backends():
    yield DeviceSpec(name="ascend", priority=30, is_available=ascend_available,
                     factory=AscendBackend, summary="Huawei Ascend NPU via torch_npu (hccl)")
    yield DeviceSpec(name="cuda", priority=20, is_available=cuda_available,
                     factory=CudaBackend, summary="NVIDIA GPU (nccl)")
    yield DeviceSpec(name="cpu", priority=0, is_available=lambda: True,
                     factory=CpuBackend, summary="CPU (gloo), always available")
