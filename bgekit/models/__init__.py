"""Model assembly: a Hugging Face encoder plus head plugins, and the cross-encoder reranker."""

from bgekit.models.cross_encoder import CrossEncoder
from bgekit.models.embedder import Embedder

__all__ = ["CrossEncoder", "Embedder"]
