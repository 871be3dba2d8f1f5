"""The incident's one current root cause, which every draft states.

A person's edit in the resolve form beats every verdict; a diagnosis beats a triage; a newer
verdict of the same step beats an older one. A diagnosis that names nothing (or cannot tell
A from C) still overturns an earlier guess: the cause is then "not determined", never the
triage's guess. A step that could not read its data (a backend error) overturns nothing.

Only a verdict at high confidence may be told to a tenant (``tenant_may_know``): a customer is
told the cause kind, from an allowlist, or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from commands.models import SCENARIO_LETTER, SCENARIO_TITLE, Confidence
from commands.timeline import Entry
from commands.timeline.events import ResolvePosted, VerdictReached

Source = Literal["person", "diagnose", "triage", "isolation"]


@dataclass(frozen=True)
class VerdictFact:
    at: datetime
    actor: str
    verdict: VerdictReached

    @property
    def step(self) -> str:
        return self.verdict.step

    @property
    def scenario(self) -> str | None:
        return self.verdict.scenario

    @property
    def headline(self) -> str:
        return self.verdict.headline

    @property
    def evidence(self) -> tuple[str, ...]:
        return self.verdict.evidence

    @property
    def findings(self) -> tuple:
        return self.verdict.findings

    @property
    def scenario_title(self) -> str | None:
        return SCENARIO_TITLE.get(self.scenario or "")

    @property
    def inconclusive(self) -> bool:
        return len(self.verdict.inconclusive) > 1

    @property
    def could_not_tell(self) -> bool:
        """It named nothing because a probe failed: it neither confirms nor overturns."""
        return self.scenario is None and not self.inconclusive and any(f.status == "error" for f in self.findings)

    @property
    def root_cause(self) -> str:
        """The headline, led by the scenario's title unless the headline already names it."""
        if self.inconclusive:
            pair = " or ".join(SCENARIO_LETTER.get(s, s) for s in self.verdict.inconclusive)
            return f"not determined: {pair} ({self.headline})"
        title = self.scenario_title
        if title is None or title in self.headline:
            return self.headline
        return f"scenario {title}: {self.headline}"


@dataclass(frozen=True)
class CurrentCause:
    source: Source
    text: str  # for people inside: the RCA, the RESOLVED update, the resolve form
    at: datetime
    actor: str
    scenario: str | None = None
    cause: str | None = None
    confidence: Confidence | None = None
    evidence: tuple[str, ...] = ()

    @property
    def step(self) -> str:
        return "resolve form" if self.source == "person" else self.source

    @property
    def tenant_may_know(self) -> bool:
        """Whether a tenant may be told the cause's kind: a verdict's, at high confidence. A
        person's wording is free text and goes to no tenant."""
        return self.source != "person" and self.scenario is not None and self.confidence == "high"


def _from_verdict(fact: VerdictFact) -> CurrentCause:
    named = None if fact.inconclusive else fact.scenario
    v = fact.verdict
    return CurrentCause(
        source=v.step,
        text=fact.root_cause,
        at=fact.at,
        actor=fact.actor,
        scenario=named,
        cause=v.cause if named else None,
        confidence=v.confidence if named else None,
        evidence=fact.evidence,
    )


def current_cause(verdicts: Sequence[VerdictFact], entries: Sequence[Entry]) -> CurrentCause | None:
    edited = [e for e in entries if isinstance(e.event, ResolvePosted) and "root_cause" in e.event.edited]
    if edited:
        last = edited[-1]
        assert isinstance(last.event, ResolvePosted)
        return CurrentCause("person", last.event.fields["root_cause"], last.at, last.actor)
    for step in ("diagnose", "triage", "isolation"):
        told = [v for v in verdicts if v.step == step and not v.could_not_tell]
        if told:
            return _from_verdict(told[-1])
    return None
