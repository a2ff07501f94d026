"""Reading training and evaluation data into canonical examples."""

from bgekit.data.example import Example, RowError, example_from_mapping

__all__ = ["Example", "RowError", "example_from_mapping"]
