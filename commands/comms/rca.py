"""`/flk rca`: the RCA draft (runbook §7) as a Markdown document, and the summary a tenant may see.

The document holds everything the timeline knows: UTC times and actors, every finding and
verdict, every mitigation with before → after and who confirmed it, every verification result,
time to detect / mitigate / resolve. The tenant summary is built from an allowlist (the
tenant's own name, times, SLI percentages and the scenario and action *kinds*) and never from
free text, so pod names, IPs, hosts and other tenants cannot reach it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from commands.comms.drafts import degraded_for, degraded_text, rca_due, severity
from commands.comms.facts import IncidentFacts, load_facts
from commands.comms.templates import RCA, RCA_TENANT_SUMMARY, Templates
from commands.config import Comms
from commands.timeline.describe import shown
from integrations.store import Store

RCA_POSTED = "rca.posted"


@dataclass(frozen=True)
class RcaDraft:
    filename: str
    document: str  # Markdown
    # Tenant -> the summary that tenant may see (one per tenant of an isolation incident).
    tenant_summaries: dict[str, str]


def rca_context(facts: IncidentFacts, comms: Comms, people: Mapping[str, str] | None = None) -> dict[str, Any]:
    names = dict(people or {})
    return {
        "incident": facts.incident,
        "tenant": facts.tenant,
        "generated_at": facts.now,
        "impact_start": facts.impact_start,
        "detected_at": facts.detected_at,
        "mitigated_at": facts.mitigated_at,
        "resolved_at": facts.resolved_at,
        "time_to_detect": facts.time_to_detect,
        "time_to_mitigate": facts.time_to_mitigate,
        "time_to_resolve": facts.time_to_resolve if facts.resolved_at else None,
        "rca_due": rca_due(facts, comms),
        "degraded": facts.degraded,
        "root_cause": facts.root_cause,
        "verdicts": facts.verdicts,
        "mitigations": facts.mitigations,
        "checks": facts.checks,
        "notices": facts.kind("notice.sent"),
        "silences": facts.kind("silence.created"),
        "notes": facts.kind("note"),
        "timeline": facts.entries,
        # An actor's display name (``people``: Slack user id -> name), else the actor as recorded.
        "who": lambda actor: names.get(actor, actor),
        # The same names for the people a timeline entry names (the ``event`` filter).
        "people": names,
        "shown": shown,
    }


def summary_context(facts: IncidentFacts, comms: Comms, tenant: str) -> dict[str, Any]:
    """Only what a tenant may see: their name, times, their SLI numbers, and kinds, never text."""
    cause = facts.root_cause
    actions = list(dict.fromkeys(m.action for m in facts.active_mitigations))
    return {
        "tenant": tenant,
        "severity": severity(facts, comms),
        "impact_start": facts.impact_start,
        "resolved_at": facts.resolved_at,
        "time_to_resolve": facts.time_to_resolve if facts.resolved_at else None,
        "impact": degraded_text(degraded_for(facts, tenant)),
        # The cause's kind only when the evidence is strong; otherwise the template says less.
        "scenario": cause.scenario if cause and cause.tenant_may_know else None,
        "actions": actions,
        "verified": any(m.verified is not None for m in facts.active_mitigations),
    }


def filename(facts: IncidentFacts) -> str:
    who = facts.incident.tenant or "isolation"
    return f"rca-{who}-incident-{facts.incident.id}-{facts.impact_start:%Y%m%d}.md"


def render_rca(
    facts: IncidentFacts, templates: Templates, comms: Comms, people: Mapping[str, str] | None = None
) -> RcaDraft:
    """The document, and a summary for each tenant of the incident (each in its own template)."""
    document = templates.render(RCA, rca_context(facts, comms, people), tenant=facts.incident.tenant)
    summaries = {
        t: templates.render(RCA_TENANT_SUMMARY, summary_context(facts, comms, t), tenant=t)
        for t in facts.incident.tenants or (facts.tenant,)
    }
    return RcaDraft(filename(facts), document, summaries)


async def draft_rca(
    store: Store,
    templates: Templates,
    comms: Comms,
    incident_id: int,
    *,
    now: datetime,
    people: Mapping[str, str] | None = None,
) -> RcaDraft:
    return render_rca(await load_facts(store, incident_id, now=now), templates, comms, people)


def rca_posted(facts: IncidentFacts) -> bool:
    """Whether an RCA was posted for the incident (the 48 h reminder stays quiet then)."""
    return bool(facts.kind(RCA_POSTED))
