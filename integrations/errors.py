"""One error type for every outside system, so a step can turn any failure into a finding."""

from __future__ import annotations


class BackendError(Exception):
    """An outside system failed; ``reason`` is short, safe to show, and holds no secret."""

    def __init__(self, system: str, reason: str) -> None:
        super().__init__(f"{system}: {reason}")
        self.system = system
        self.reason = reason
