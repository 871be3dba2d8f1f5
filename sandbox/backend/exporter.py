"""The Prometheus text exposition format (0.0.4), written by hand: ``prometheus_client``
would append ``_total`` to the counters, and the runbook queries them without it."""

from __future__ import annotations

import math
from collections.abc import Iterable

from sandbox.backend.metrics_model import FAMILIES, Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TYPES = {name: (kind, help_text) for name, kind, help_text in FAMILIES}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _family(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in _TYPES:
            return name.removesuffix(suffix)
    return name


def render(samples: Iterable[Sample]) -> str:
    """Samples grouped under their family's ``# HELP`` and ``# TYPE`` lines."""
    grouped: dict[str, list[str]] = {}
    for name, labels, value in samples:
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        grouped.setdefault(_family(name), []).append(f"{name}{{{pairs}}} {_number(value)}\n")
    out: list[str] = []
    for family, lines in grouped.items():
        kind, help_text = _TYPES.get(family, ("untyped", ""))
        if help_text:
            out.append(f"# HELP {family} {help_text}\n")
        out.append(f"# TYPE {family} {kind}\n")
        out.extend(lines)
    return "".join(out)
