"""Drafts of the runbook's messages, from the incident's own facts.

A ``Draft`` holds the fields a person may edit (plain text: the modal's inputs) apart from the
facts they may not; ``render`` puts both into the template, escaping every value, so an edited
field is data exactly like an alert's text. Build the draft again on submit, apply the edited
fields with ``with_fields`` and render: what is posted is what the person saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from commands.comms.facts import Degradation, IncidentFacts
from commands.comms.templates import (
    STAKEHOLDER_RESOLVED,
    TENANT_INVESTIGATING,
    TENANT_RESOLVED,
    Templates,
    duration,
    percent,
    utc,
)
from commands.config import Comms

# How each SLI reads to a tenant; "{value}" and "{slo}" are percentages.
TENANT_SLI_PHRASES = {
    "escalations": "an elevated share of escalated requests ({value} of requests; objective: at most {slo})",
    "signature_errors": "elevated signature verification failures ({value} of requests; objective: at most {slo})",
}
# Follow-ups the runbook (§5, §7) asks for after each scenario.
SCENARIO_NEXT_STEPS = {
    "signatures": "confirm with the tenant that every agent signs with the current key",
    "escalations": "share the escalation export with data science for tolerance tuning (runbook §5)",
    "quota": "review the tenant's quota and request pattern with them",
    "policy": "policy review: are the tolerance thresholds appropriate? (runbook §7.2)",
}


@dataclass(frozen=True)
class Draft:
    template: str
    tenant: str | None
    fields: dict[str, str]
    facts: dict[str, Any] = field(default_factory=dict)

    def with_fields(self, **edited: str) -> Draft:
        """The same draft with some fields replaced; a field the draft does not have is an error."""
        unknown = sorted(set(edited) - set(self.fields))
        if unknown:
            raise ValueError(f"{self.template} has no field {', '.join(unknown)}")
        return replace(self, fields={**self.fields, **{k: str(v).strip() for k, v in edited.items()}})

    def render(self, templates: Templates) -> str:
        return templates.render(self.template, {**self.facts, **self.fields}, tenant=self.tenant)


@dataclass(frozen=True)
class Annotation:
    """The Grafana annotation of runbook §6 ("SLO breach - Root cause: [X] - Mitigation: [Y]")."""

    text: str
    tags: tuple[str, ...]
    start: datetime
    end: datetime


def tenant_of(facts: IncidentFacts, tenant: str | None) -> str:
    """The tenant a notice is for: the incident's own, or one of an isolation incident's."""
    incident = facts.incident
    if tenant is None:
        if incident.tenant is None:
            raise ValueError("this incident covers several tenants: name the tenant to notify")
        return incident.tenant
    if tenant not in incident.tenants:
        raise ValueError(f"{tenant} is not part of incident #{incident.id}")
    return tenant


def degraded_for(facts: IncidentFacts, tenant: str) -> list[Degradation]:
    own = [d for d in facts.degraded if d.tenant == tenant]
    return [d for d in own if d.status == "firing"] or own


def degraded_text(degradations: list[Degradation]) -> str:
    """What is degraded, in a tenant's words, from the SLI alerts."""
    phrases = []
    for d in degradations:
        phrase = TENANT_SLI_PHRASES.get(d.sli)
        if phrase and d.value is not None and d.slo is not None:
            phrases.append(phrase.format(value=percent(d.value), slo=percent(d.slo)))
        else:
            phrases.append(f"a degraded {d.name}")
    return " and ".join(dict.fromkeys(phrases)) or "a service degradation"


def severity(facts: IncidentFacts, comms: Comms) -> str:
    return comms.severity or facts.incident.severity


def investigating(facts: IncidentFacts, comms: Comms, *, tenant: str | None = None) -> Draft:
    """Runbook §5.1: the tenant notice, sent within 5 minutes."""
    who = tenant_of(facts, tenant)
    return Draft(
        TENANT_INVESTIGATING,
        who,
        fields={
            "severity": severity(facts, comms),
            "degraded": degraded_text(degraded_for(facts, who)),
            "eta": comms.eta,
        },
        facts={"tenant": who, "since": facts.impact_start, "incident_id": facts.incident.id},
    )


def rca_due(facts: IncidentFacts, comms: Comms) -> datetime:
    return (facts.resolved_at or facts.now) + timedelta(seconds=comms.rca_reminder_s)


def tenant_resolved(facts: IncidentFacts, comms: Comms, *, tenant: str | None = None) -> Draft:
    """The tenant update once the incident is resolved."""
    who = tenant_of(facts, tenant)
    hours = round(comms.rca_reminder_s / 3600)
    return Draft(
        TENANT_RESOLVED,
        who,
        fields={
            "severity": severity(facts, comms),
            "impact": degraded_text(degraded_for(facts, who)),
            "duration": duration(facts.time_to_resolve),
            "follow_up": f"We will share a summary of the root cause and the preventive measures within {hours} hours.",
        },
        facts={
            "tenant": who,
            "since": facts.impact_start,
            "resolved_at": facts.resolved_at or facts.now,
            "incident_id": facts.incident.id,
        },
    )


def root_cause_text(facts: IncidentFacts) -> str:
    cause = facts.root_cause
    return cause.text if cause else "not determined yet"


def resolution_text(facts: IncidentFacts, people: Mapping[str, str] | None = None) -> str:
    """The mitigations applied (and not undone), with before → after, who confirmed, what verified."""
    lines = [m.describe(people) for m in facts.active_mitigations]
    if lines:
        return "; ".join(lines)
    ended = [d.ended_at for d in facts.degraded if d.ended_at is not None]
    if facts.degraded and len(ended) == len(facts.degraded):
        return f"no mitigation recorded; the alert resolved at {utc(max(ended), 'time')} UTC"
    return "no mitigation recorded"


def next_steps_text(facts: IncidentFacts, comms: Comms) -> str:
    verdict = facts.root_cause
    steps = [f"RCA due by {utc(rca_due(facts, comms))} (`/flk rca` drafts it)"]
    if verdict and verdict.scenario in SCENARIO_NEXT_STEPS:
        steps.append(SCENARIO_NEXT_STEPS[verdict.scenario])
    steps.append("share the RCA summary with the tenant")
    return "; ".join(steps)


def stakeholder_resolved(facts: IncidentFacts, comms: Comms, people: Mapping[str, str] | None = None) -> Draft:
    """Runbook §6: the RESOLVED update (thread and stakeholder channel)."""
    return Draft(
        STAKEHOLDER_RESOLVED,
        facts.incident.tenant,
        fields={
            "root_cause": root_cause_text(facts),
            "resolution": resolution_text(facts, people),
            "duration": duration(facts.time_to_resolve),
            "next_steps": next_steps_text(facts, comms),
        },
        facts={
            "tenant": facts.tenant,
            "severity": facts.incident.severity,
            "incident_id": facts.incident.id,
            "title": facts.incident.title,
        },
    )


def annotation(facts: IncidentFacts, comms: Comms, resolve: Draft) -> Annotation:
    """The dashboard annotation from the (edited) RESOLVED fields, spanning the breach."""
    fields = resolve.fields
    tenants = facts.incident.tenants or ((facts.incident.tenant,) if facts.incident.tenant else ())
    return Annotation(
        text=f"SLO breach - Root cause: {fields['root_cause']} - Mitigation: {fields['resolution']}",
        tags=(*comms.grafana_tags, *(f"tenant:{t}" for t in tenants), f"incident:{facts.incident.id}"),
        start=facts.impact_start,
        end=facts.resolved_at or facts.now,
    )
