"""Click parameter types shared by the commands."""

from __future__ import annotations

from pathlib import Path

import click


class ModelDirectory(click.ParamType):
    """A model on disk: a directory, or ``pkg:NAME`` (a model inside an installed package, as recipes
    may name it), turned into the directory that holds it so commands can treat both alike."""

    name = "model_dir"

    def convert(self, value, param, ctx):  # noqa: ANN001 - click's signature
        from bgekit.errors import BgekitError
        from bgekit.model_paths import PACKAGE_PREFIX, resolve_model_path

        text = str(value)
        if text.startswith(PACKAGE_PREFIX):
            try:
                return resolve_model_path(text)
            except BgekitError as error:
                self.fail(str(error), param, ctx)
        if not Path(text).is_dir():
            self.fail(f"'{text}' is not a directory: give a saved model folder or pkg:NAME for a model "
                      "shipped in an installed package", param, ctx)
        return text


MODEL_DIR = ModelDirectory()
