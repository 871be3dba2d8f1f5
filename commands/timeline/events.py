"""The incident timeline as typed events: what happened, as data, never as prose.

The store keeps each event's ``kind`` and its fields (``data``) as JSON; text is written only at
the edges (Slack mrkdwn, the RCA's Markdown, the terminal), from these fields. ``actor`` and
``at`` live on the stored row, not here: every event has them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from commands.models import Confidence

FindingStatus = Literal["ok", "warn", "breach", "error", "unknown"]
Sli = Literal["escalations", "signature_errors"]
# How each SLI is named in a message (the alert's ``sli`` label is the key).
SLI_NAMES: dict[str, str] = {"escalations": "escalation ratio", "signature_errors": "signature-error ratio"}


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SliValue(BaseModel):
    """One SLI as measured: its value and the SLO it is held to (ratios, 0.041 = 4.1%)."""

    model_config = ConfigDict(frozen=True)

    sli: Sli
    value: float | None
    slo: float

    @property
    def name(self) -> str:
        return SLI_NAMES[self.sli]

    @property
    def breached(self) -> bool:
        return self.value is not None and self.value > self.slo


class FindingRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    title: str = ""
    status: FindingStatus
    summary: str


class ChangeRef(BaseModel):
    """One key of one object, before → after (None: absent / removed)."""

    model_config = ConfigDict(frozen=True)

    object: str  # e.g. "configmap/tenant-acme"
    namespace: str = ""
    key: str
    before: str | None
    after: str | None


# -- the incident ---------------------------------------------------------------------------


class IncidentOpened(_Event):
    kind: Literal["incident.opened"] = "incident.opened"
    title: str
    severity: str
    tenants: tuple[str, ...] = ()
    # What opened it: an alert, a person's command, the isolation rule.
    source: Literal["alert", "command", "isolation"] = "alert"


class TenantsAdded(_Event):
    kind: Literal["incident.tenants_added"] = "incident.tenants_added"
    tenants: tuple[str, ...]


class StateChanged(_Event):
    kind: Literal["incident.state"] = "incident.state"
    state: Literal["open", "mitigating", "verifying", "resolved"]
    previous: str | None = None
    reason: str = ""


class AlertNotified(_Event):
    kind: Literal["alert.firing", "alert.resolved"]
    fingerprint: str
    tenant: str
    sli: str = ""
    value: float | None = None
    slo: float | None = None


class CommandRun(_Event):
    """A person's command, as typed (shown as code, never as markup)."""

    kind: Literal["command"] = "command"
    verb: str
    text: str
    via: Literal["slack", "terminal"] = "slack"


class Refused(_Event):
    """Someone asked for something they may not do (or a rule forbids it now)."""

    kind: Literal["refused"] = "refused"
    action: str  # e.g. "mitigation.confirm", "notify.send", "resolve.submit"
    reason: str
    plan_id: str | None = None


# -- steps and verdicts ---------------------------------------------------------------------


class VerdictReached(_Event):
    """A triage or diagnosis ended: the scenario (and for diagnose the runbook's sub-cause) it
    names, with the evidence it cites and how sure it is."""

    kind: Literal["verdict"] = "verdict"
    step: Literal["triage", "diagnose", "isolation"]
    scenario: str | None  # signatures | escalations | quota | policy, None: no breach / unknown
    cause: str | None = None  # the runbook's sub-cause, e.g. "legitimate_burst"
    headline: str
    evidence: tuple[str, ...] = ()
    confidence: Confidence | None = None
    runner_up: str | None = None
    inconclusive: tuple[str, ...] = ()  # the scenarios it could not tell apart
    overturns: str | None = None  # a diagnosis naming another scenario: the triage's it overturned
    slis: tuple[SliValue, ...] = ()
    findings: tuple[FindingRef, ...] = ()
    breach: bool = True
    tenant: str | None = None  # the tenant the step looked at (None: several, an isolation triage)


class ThreadOpened(_Event):
    """The incident's chat thread was posted (its parent message)."""

    kind: Literal["thread.opened"] = "thread.opened"
    ts: str
    channel: str = ""


class ExportPosted(_Event):
    kind: Literal["export.posted"] = "export.posted"
    filename: str
    rows: int


# -- mitigations ----------------------------------------------------------------------------


class MitigationPlanned(_Event):
    kind: Literal["mitigation.planned"] = "mitigation.planned"
    plan_id: str
    action: str
    tenant: str
    changes: tuple[ChangeRef, ...]
    restart: str | None = None
    needs_second_approver: bool = False
    dry_run: bool = False
    undoes: str | None = None
    expires_at: str | None = None  # ISO time a temporary mitigation should be reverted


class MitigationApproved(_Event):
    kind: Literal["mitigation.approved"] = "mitigation.approved"
    plan_id: str
    approver: str


class MitigationApplied(_Event):
    """Applied (or, with ``undoes``, an undo applied): the changes as they landed."""

    kind: Literal["mitigation.applied"] = "mitigation.applied"
    plan_id: str
    action: str
    tenant: str
    changes: tuple[ChangeRef, ...]
    confirmed_by: str
    approvers: tuple[str, ...] = ()
    restart: str | None = None
    undoes: str | None = None
    until: str | None = None  # ISO time a temporary mitigation is due to be reverted


class MitigationExtended(_Event):
    """A temporary mitigation kept longer: its expiry moved from ``previous`` to ``until``."""

    kind: Literal["mitigation.extended"] = "mitigation.extended"
    plan_id: str
    previous: str
    until: str


class MitigationExpiryDue(_Event):
    """A temporary mitigation reached its expiry; ``in_place``: still applied (the thread is asked
    to revert or extend it), else it was undone before."""

    kind: Literal["mitigation.expiry_due"] = "mitigation.expiry_due"
    plan_id: str
    until: str
    in_place: bool


class MitigationStopped(_Event):
    """Not applied, or applied part-way: ``outcome`` says which."""

    kind: Literal["mitigation.stopped"] = "mitigation.stopped"
    plan_id: str
    outcome: Literal["partial", "conflict", "failed", "cancelled", "expired"]
    reason: str = ""
    changes: tuple[ChangeRef, ...] = ()  # what landed, for ``partial``


class MitigationResumed(_Event):
    kind: Literal["mitigation.resumed"] = "mitigation.resumed"
    plan_id: str


class RestartRetried(_Event):
    kind: Literal["mitigation.restarted"] = "mitigation.restarted"
    plan_id: str
    ok: bool
    reason: str = ""


class CheckRan(_Event):
    """An SLO check (runbook §6): after a mitigation (``plan_id``), or asked for by hand."""

    kind: Literal["check"] = "check"
    n: int
    of: int
    ok: bool
    plan_id: str | None = None
    summary: str = ""
    slis: tuple[SliValue, ...] = ()
    late_s: float = 0.0
    status: FindingStatus = "ok"


# -- communications -------------------------------------------------------------------------


class NoticeSent(_Event):
    kind: Literal["notice.sent"] = "notice.sent"
    notice: Literal["investigating", "resolved"]
    tenant: str
    channel: str | None  # None: drafted into the thread, no channel configured
    text: str = ""  # the notice as sent (empty for notices recorded before it was kept)


class NoticeFailed(_Event):
    kind: Literal["notice.failed"] = "notice.failed"
    notice: str
    tenant: str
    reason: str


class ResolvePosted(_Event):
    kind: Literal["resolve.posted"] = "resolve.posted"
    fields: dict[str, str]
    stakeholder_channel: str | None = None
    edited: tuple[str, ...] = ()  # the fields the person changed from the draft


class SilenceChanged(_Event):
    kind: Literal["silence.created", "silence.expired"]
    silence_id: str
    tenant: str = ""
    reason: str = ""
    ends_at: str | None = None
    gone: bool = False  # expired: Alertmanager no longer knew it (restarted without its data)


class AnnotationAdded(_Event):
    """The dashboard annotation of runbook §6."""

    kind: Literal["annotation.added"] = "annotation.added"
    annotation_id: str


class RcaPosted(_Event):
    kind: Literal["rca.posted", "rca.reminded"]
    filename: str = ""


class NotePinned(_Event):
    """A thread message a person marked for the timeline."""

    kind: Literal["note"] = "note"
    text: str  # plain text: the Slack layer turns mentions and links into words before recording it
    author: str
    message_ts: str = ""
    pinned_by: str = ""


class LegacyEvent(_Event):
    """An event stored before the timeline was typed: kept as who / when / what."""

    kind: Literal["legacy"] = "legacy"
    legacy_kind: str
    text: str


Event = Annotated[
    IncidentOpened
    | TenantsAdded
    | StateChanged
    | AlertNotified
    | CommandRun
    | Refused
    | VerdictReached
    | ThreadOpened
    | ExportPosted
    | MitigationPlanned
    | MitigationApproved
    | MitigationApplied
    | MitigationStopped
    | MitigationExtended
    | MitigationExpiryDue
    | MitigationResumed
    | RestartRetried
    | CheckRan
    | NoticeSent
    | NoticeFailed
    | ResolvePosted
    | SilenceChanged
    | AnnotationAdded
    | RcaPosted
    | NotePinned
    | LegacyEvent,
    Field(discriminator="kind"),
]

EVENT: TypeAdapter[Event] = TypeAdapter(Event)


def event_from(kind: str, data: dict[str, object]) -> Event:
    """The typed event a stored row holds."""
    return EVENT.validate_python({**data, "kind": kind})


def event_data(event: Event) -> dict[str, object]:
    """What the store keeps of an event besides its kind (JSON-ready)."""
    return event.model_dump(mode="json", exclude={"kind"})
