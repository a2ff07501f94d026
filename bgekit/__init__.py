"""bgekit: fine-tune BGE-M3 embedders and BGE rerankers from one YAML recipe.

The names plugins use are re-exported here from :mod:`bgekit.api`, the public plugin API.
"""

from bgekit.api import (
    AugmenterSpec,
    BgekitError,
    CallbackSpec,
    ComponentSpec,
    DeviceSpec,
    FormatSpec,
    HeadSpec,
    LossOutput,
    LossSpec,
    MetricSpec,
    MinerSpec,
    hookimpl,
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
