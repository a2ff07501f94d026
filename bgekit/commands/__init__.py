"""Command families of the ``bgekit`` CLI, one module each (listed in :mod:`bgekit.cli`)."""
