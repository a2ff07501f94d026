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
    """One accelerator family. Subclasses override what differs."""

    name = "base"
    #: torch.distributed backend for this device family
    distributed_backend = "gloo"
    #: autocast dtypes this device runs well, best first ("fp32" always works)
    autocast_dtypes: tuple[str, ...] = ("fp32",)

    def device(self, local_rank: int | None = None) -> Any:
        """The torch device for this process (``LOCAL_RANK`` under torchrun)."""
        raise NotImplementedError

    def device_count(self) -> int:
        return 1

    def memory_stats(self) -> dict[str, float]:
        """Memory in MiB: ``allocated``, ``peak_allocated``, ``reserved`` where known."""
        return {}

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window."""

    def empty_cache(self) -> None:
        """Give cached device memory back."""

    def synchronize(self) -> None:
        """Wait for queued work (for honest timings)."""

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
