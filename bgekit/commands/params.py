"""Click parameter types shared by the commands."""

from __future__ import annotations

import click


class ModelDirectory(click.ParamType):
    """A model as every command takes it: a folder, ``pkg:NAME`` (a model inside an installed package) or a
    Hugging Face hub id, turned into a local folder (a hub model's files are fetched into the hub cache once)
    so commands that read a model's files treat all three alike. Bad references fail here, in one line,
    before anything loads (see :mod:`bgekit.model_paths`)."""

    name = "model"

    def convert(self, value, param, ctx):  # noqa: ANN001 - click's signature
        from bgekit.model_paths import local_model_dir

        # a --tokenizer needs no weights: a hub tokenizer is fetched without them
        weights = getattr(param, "name", None) != "tokenizer"
        return local_model_dir(str(value), weights=weights)  # a BgekitError: one line, exit 1 (bgekit.cli)


MODEL_DIR = ModelDirectory()
