"""bgekit: fine-tune BGE-M3 embedders and BGE rerankers from one YAML recipe."""

from bgekit.errors import BgekitError
from bgekit.hookspecs import hookimpl
from bgekit.losses import LossOutput
from bgekit.registry import (
    AugmenterSpec,
    CallbackSpec,
    ComponentSpec,
    DeviceSpec,
    FormatSpec,
    HeadSpec,
    LossSpec,
    MetricSpec,
    MinerSpec,
)

__version__ = "0.1.0"

__all__ = [
    "AugmenterSpec",
    "BgekitError",
    "CallbackSpec",
    "ComponentSpec",
    "DeviceSpec",
    "FormatSpec",
    "HeadSpec",
    "LossOutput",
    "LossSpec",
    "MetricSpec",
    "MinerSpec",
    "hookimpl",
    "__version__",
]
