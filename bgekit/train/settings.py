"""Recipe sections as dataclasses whose defaults come from the recipe schema.

The schema (:func:`bgekit.schema.section_schema`) is the one place a
default is written: a settings dataclass declares each key with
:func:`schema_field`, which reads the schema's default when an instance is
made, so the two cannot drift apart. :func:`settings_from_section` builds one
from a recipe section and refuses a key the dataclass does not know (rather
than dropping it), with a "did you mean".
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, TypeVar

from bgekit.errors import BgekitError
from bgekit.schema import section_schema
from bgekit.registry import did_you_mean

Settings = TypeVar("Settings")


def schema_default(section: str, key: str) -> Any:
    """The recipe schema's default for ``section.key`` (None where it has none); a fresh copy."""
    properties = section_schema(section).get("properties", {})
    if key not in properties:
        raise KeyError(f"the recipe schema has no key {section}.{key}")
    return copy.deepcopy(properties[key].get("default"))


def setting(given: dict[str, Any] | None, section: str, key: str) -> Any:
    """``given[key]`` (a recipe section's values), or the schema's default when the section leaves it out
    (a validated recipe has every default filled in; one built in code may not)."""
    given = given or {}
    return given[key] if key in given else schema_default(section, key)


def schema_field(section: str, key: str) -> Any:
    """A dataclass field whose default is the schema's, read when an instance is made."""
    return dataclasses.field(default_factory=lambda: schema_default(section, key))


def settings_from_section(cls: type[Settings], section: str, given: dict[str, Any] | None,
                          **extra: Any) -> Settings:
    """``cls`` from a recipe section's values (schema defaults for the rest); an unknown key is refused.

    ``extra`` fills fields that come from elsewhere in the recipe (the trainer's top-level ``seed``); the
    section itself cannot set them.
    """
    known = [f.name for f in dataclasses.fields(cls) if f.name not in extra]  # type: ignore[arg-type]
    for key in given or {}:
        if key not in known:
            raise BgekitError(f"{section}.{key}: unknown key{did_you_mean(key, known)}")
    return cls(**(given or {}), **extra)
