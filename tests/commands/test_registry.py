"""The /flk parser: bad input is refused with a usage message before anything else runs."""

from __future__ import annotations

import pytest

import commands.triage  # noqa: F401  (registers the verb)
from commands.registry import UsageError, help_lines, parse
from commands.tenants import well_formed


@pytest.mark.parametrize(
    "text",
    [
        "triage 'acme\"} or vector(1)'",
        "triage ../x",
        "triage " + "a" * 300,
        "triage ''",
        "triage ACME",
        "triage acme extra",
        "triage 'unbalanced",
        "frobnicate acme",
    ],
)
def test_bad_input_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(text)
    message = caught.value.text("/flk")
    assert "Usage: `/flk triage [tenant]`" in message or "Try `/flk help`" in message
    assert len(message) < 300


def test_triage_with_and_without_tenant() -> None:
    assert parse("triage north-1").args == {"tenant": "north-1"}
    assert parse("triage").args == {"tenant": None}
    assert parse("  ").verb.name == "help"


def test_help_is_generated_from_the_registry() -> None:
    lines = help_lines("/flk")
    assert any(line.startswith("`/flk triage [tenant]`") for line in lines)
    assert any(line.startswith("`/flk help`") for line in lines)


@pytest.mark.parametrize("tenant", ["a", "acme", "t-1", "x" * 40])
def test_well_formed_tenants(tenant: str) -> None:
    assert well_formed(tenant)


@pytest.mark.parametrize("tenant", ["", "-a", "a-", "A", "a_b", "a.b", "x" * 41, 'a"}', "a b", "a\n"])
def test_malformed_tenants(tenant: str) -> None:
    assert not well_formed(tenant)
