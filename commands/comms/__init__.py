"""Runbook §5.1, §6, §7: tenant notices, the RESOLVED update, the RCA draft, alert silences.

Slack-free: drafts are built from the incident's records (``facts``), rendered from editable
templates (``templates``), and handed to ``bot/`` to show, edit and post. Importing this
package registers the `notify`, `resolve`, `rca` and `silence` verbs.
"""

from commands.comms.drafts import (
    Annotation,
    Draft,
    annotation,
    investigating,
    stakeholder_resolved,
    tenant_resolved,
)
from commands.comms.facts import IncidentFacts, build_facts, load_facts
from commands.comms.rca import RCA_POSTED, RcaDraft, draft_rca, rca_posted, render_rca
from commands.comms.silence import (
    CreatedSilence,
    ExpiredSilences,
    expire_silences,
    open_silences,
    silence_matchers,
    silence_tenant,
)
from commands.comms.templates import TemplateError, Templates
from commands.comms.verbs import NOTIFY, RCA, RESOLVE, SILENCE, check_silence_duration, parse_duration

__all__ = [
    "NOTIFY",
    "RCA",
    "RCA_POSTED",
    "RESOLVE",
    "SILENCE",
    "Annotation",
    "CreatedSilence",
    "Draft",
    "ExpiredSilences",
    "IncidentFacts",
    "RcaDraft",
    "TemplateError",
    "Templates",
    "annotation",
    "build_facts",
    "check_silence_duration",
    "draft_rca",
    "expire_silences",
    "investigating",
    "load_facts",
    "open_silences",
    "parse_duration",
    "rca_posted",
    "render_rca",
    "silence_matchers",
    "silence_tenant",
    "stakeholder_resolved",
    "tenant_resolved",
]
