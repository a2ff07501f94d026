"""Model assembly: a Hugging Face encoder plus head plugins."""

from bgekit.models.embedder import Embedder

__all__ = ["Embedder"]
