"""Load and validate a world spec, with one readable message per mistake."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from sandbox.world.spec import World

DEFAULT_WORLD = Path(__file__).resolve().parent.parent / "worlds" / "default.yaml"


class WorldError(Exception):
    """A world spec that cannot be used; the message names file, path and expectation."""


def load_world(path: str | Path | None = None) -> World:
    source = Path(path) if path else DEFAULT_WORLD
    try:
        document = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WorldError(f"{source}: cannot read world spec ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise WorldError(f"{source}:{where} is not valid YAML") from None
    if not isinstance(document, dict):
        raise WorldError(f"{source}: expected a mapping at the top of the document")
    try:
        return World.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "required field is missing"
        raise WorldError(f"{source}: {where}: {message}") from None
