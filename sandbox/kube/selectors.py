"""Label and field selectors with the API server's grammar and semantics."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.kube.errors import bad_request
from sandbox.kube.resources import Resource

Matcher = Callable[[dict[str, Any]], bool]

_KEY = r"(?:[a-z0-9A-Z.-]+/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?"
_VALUE = r"(?:[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?"
_EQUALITY = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_ORDER = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>[<>])\s*(?P<value>-?\d+)$")
_EXISTS = re.compile(rf"^(?P<neg>!?)\s*(?P<key>{_KEY})$")
_VALUE_ONLY = re.compile(rf"^{_VALUE}$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``in (...)`` value lists."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _EQUALITY.match(text):
        key, op, value = match["key"], match["op"], match["value"]
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _SET.match(text):
        key, op = match["key"], match["op"]
        values = {v.strip() for v in match["values"].split(",")}
        if any(not _VALUE_ONLY.match(v) for v in values):
            raise bad_request(f"unable to parse requirement: invalid label value in {text!r}")
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _ORDER.match(text):
        key, op, bound = match["key"], match["op"], int(match["value"])

        def ordered(labels: Mapping[str, str]) -> bool:
            try:
                number = int(labels[key])
            except (KeyError, ValueError):
                return False
            return number > bound if op == ">" else number < bound

        return ordered
    if match := _EXISTS.match(text):
        key, negated = match["key"], bool(match["neg"])
        return lambda labels: (key in labels) != negated
    raise bad_request(f"unable to parse requirement: {text!r} is not a valid label selector requirement")


def label_matcher(selector: str | None) -> Matcher:
    """``app=backend,tier!=db,env in (a,b),!legacy`` -> a predicate over objects."""
    if not selector or not selector.strip():
        return lambda obj: True
    requirements = [_requirement(part) for part in _split_top_level(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(req(labels) for req in requirements)

    return matches


def _field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":
        path = "source.component"
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return str(node).lower()
    return str(node)


def _split_unescaped(text: str, separator: str) -> list[str]:
    return re.split(rf"(?<!\\){re.escape(separator)}", text)


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def field_matcher(selector: str | None, resource: Resource) -> Matcher:
    """``involvedObject.kind=Secret,reason!=Pulled`` -> a predicate; unknown fields are a 400."""
    if not selector or not selector.strip():
        return lambda obj: True
    allowed = {"metadata.name", "metadata.namespace", *resource.fields}
    requirements: list[tuple[str, bool, str]] = []
    for part in _split_unescaped(selector, ","):
        match = re.match(r"^\s*([A-Za-z0-9.]+)\s*(==|!=|=)(.*)$", part)
        if not match:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        requirements.append((field, op == "!=", _unescape(value.strip())))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, f) == v) != negated for f, negated, v in requirements)

    return matches
