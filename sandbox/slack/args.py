"""A method's arguments as Slack reads them: form fields and query strings are strings
("true", JSON-encoded arrays), JSON bodies carry real types; both are accepted."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from sandbox.slack.errors import SlackError, invalid_arguments, missing

_TS = re.compile(r"^\d{10}\.\d{6}$")


class Args:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def __contains__(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def string(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise missing(name)
            return default
        if isinstance(value, bool | int | float):
            return json.dumps(value)
        if not isinstance(value, str):
            raise invalid_arguments(f"{name} must be a string")
        return value

    def opt(self, name: str) -> str | None:
        return self.string(name) or None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes")

    def integer(self, name: str, default: int) -> int:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise invalid_arguments(f"{name} must be an integer") from None

    def ts(self, name: str, *, required: bool = False, error: str = "invalid_arguments") -> str | None:
        value = self.string(name, required=required)
        if not value:
            return None
        if not _TS.match(value):
            raise SlackError(error, messages=[f"{value} is not a valid {name}"])
        return value

    def structured(self, name: str, *, error: str, kind: type = list) -> Any:
        """A structured argument: a JSON value in a JSON body, a JSON string in a form."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise SlackError(error, messages=[f"{name} is not valid JSON"]) from None
        if not isinstance(value, kind):
            raise SlackError(error, messages=[f"{name} must be a JSON {kind.__name__}"])
        return value

    def public(self) -> dict[str, Any]:
        """The arguments as recorded in the call log: JSON strings decoded, the token left out."""
        out: dict[str, Any] = {}
        for key, value in self.values.items():
            if key == "token":
                continue
            if isinstance(value, str) and value[:1] in ("[", "{"):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            out[key] = value
        return out
