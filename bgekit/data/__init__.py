"""Reading, checking, converting and preparing training and evaluation data.

The Python API behind ``bgekit data``: :func:`read_examples` streams any
format as :class:`Example` / :class:`RowError`; :func:`validate` and
:func:`convert` report and rewrite files; :func:`split_files` cuts books into
passages and :func:`make_pairs` turns passages into training examples.
"""

from bgekit.data.conversion import convert
from bgekit.data.example import Example, RowError, example_from_mapping
from bgekit.data.pairs import make_pairs
from bgekit.data.readers import detect_format, open_data, read_examples
from bgekit.data.split import split_files
from bgekit.data.validation import validate

__all__ = ["Example", "RowError", "example_from_mapping", "read_examples", "open_data", "detect_format",
           "validate", "convert", "split_files", "make_pairs"]
