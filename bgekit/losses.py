"""What every loss returns: the scalar to back-propagate and named parts to log.

It lives in the core (not in a loss plugin) so that a third-party loss
imports it from :mod:`bgekit.api` like the built-in ones do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LossOutput:
    """``loss``: a 0-dim ``torch.Tensor`` with grad (already weighted as the loss wants it counted);
    ``parts``: plain floats by name (``{"infonce": 0.69}``) for the step log and callbacks."""

    loss: Any  # torch.Tensor; typed loosely so importing this module does not import torch
    parts: dict[str, float] = field(default_factory=dict)
