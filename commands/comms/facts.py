"""What the incident's own records say: alerts, verdicts, mitigations, checks, in one read.

Every draft (notices, the RESOLVED update, the RCA) is built from ``IncidentFacts``, so they
all tell the same story. Timeline event kinds read here, by their ``details``:

- ``alert.firing`` / ``alert.resolved``: ``value``, ``fingerprint``
- ``triage.finished`` / ``diagnose.finished``: ``scenario``, ``evidence`` (list of text),
  ``findings`` ({key: {status, summary}})
- ``mitigation.planned``: the text starts with the action (``"quota: …"``), ``plan_id``
- ``mitigation.applied`` / ``mitigation.undone``: ``plan_id``, ``changes`` ([{object, key,
  before, after}]), ``confirmed_by``; optional ``action``, ``target``, ``approved_by``, ``restart``
- ``check.passed`` / ``check.failed`` (or any ``check.*`` with a bool ``ok``): ``plan_id``
- ``notice.sent``, ``silence.created`` / ``silence.expired`` (``silence_id``), ``rca.posted``,
  ``note`` (a pinned message)

Any other kind is kept in the timeline as who / when / what.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from commands.models import SCENARIO_TITLE
from integrations.store import Alert, Incident, Store, TimelineEvent

VERDICT_KINDS = ("triage.finished", "diagnose.finished")
PLANNED, APPLIED, UNDONE = "mitigation.planned", "mitigation.applied", "mitigation.undone"
# The namespace suffix of an object name ("configmap/x (namespace y)"): noise in a message.
_NAMESPACE = re.compile(r" \(namespace [^)]*\)$")
# A Slack emoji code leading a check's text (":white_check_mark: SLO check …").
_EMOJI = re.compile(r"^:[a-z0-9_+-]+:\s*")
SLI_NAMES = {"escalations": "escalation ratio", "signature_errors": "signature-error ratio"}


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class Degradation:
    """One SLI alert: what was degraded, how much, from when to when."""

    tenant: str
    sli: str
    name: str
    value: float | None
    slo: float | None
    status: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class FindingLine:
    key: str
    status: str
    summary: str


@dataclass(frozen=True)
class VerdictFact:
    at: datetime
    actor: str
    step: str  # triage / diagnose
    scenario: str | None
    headline: str
    evidence: tuple[str, ...]
    findings: tuple[FindingLine, ...]

    @property
    def scenario_title(self) -> str | None:
        return SCENARIO_TITLE.get(self.scenario or "")

    @property
    def root_cause(self) -> str:
        """The headline, led by the scenario's title unless the headline already names it."""
        title = self.scenario_title
        if title is None or title in self.headline:
            return self.headline
        return f"scenario {title}: {self.headline}"


@dataclass(frozen=True)
class Change:
    key: str
    before: str
    after: str
    target: str = ""  # the object changed


@dataclass(frozen=True)
class CheckFact:
    at: datetime
    actor: str
    ok: bool
    text: str
    plan_id: str | None = None


@dataclass(frozen=True)
class MitigationFact:
    at: datetime
    actor: str
    kind: str  # applied / undone
    plan_id: str | None
    action: str
    target: str
    changes: tuple[Change, ...]
    planned_by: str
    confirmed_by: str
    approved_by: str | None
    restart: str | None
    text: str
    checks: tuple[CheckFact, ...] = ()
    undone: bool = False

    @property
    def verified(self) -> CheckFact | None:
        """The last check after it, when that check passed."""
        return self.checks[-1] if self.checks and self.checks[-1].ok else None

    def describe(self, people: Mapping[str, str] | None = None) -> str:
        """One line: action, changes before → after, who confirmed, whether a check verified it."""
        names = people or {}
        changes = ", ".join(f"{c.key} {c.before} → {c.after}" for c in self.changes)
        line = self.action + (f" on {self.target}" if self.target else "") + (f" ({changes})" if changes else "")
        line += f", confirmed by {names.get(self.confirmed_by, self.confirmed_by)}"
        if self.verified is not None:
            line += f", verified at {self.verified.at:%H:%M} UTC"
        elif self.checks:
            line += ", last check still failing"
        return line


@dataclass(frozen=True)
class IncidentFacts:
    incident: Incident
    alerts: tuple[Alert, ...]
    events: tuple[TimelineEvent, ...]
    degraded: tuple[Degradation, ...]
    verdicts: tuple[VerdictFact, ...]
    mitigations: tuple[MitigationFact, ...]
    checks: tuple[CheckFact, ...]
    now: datetime
    other_events: dict[str, tuple[TimelineEvent, ...]] = field(default_factory=dict)

    @property
    def tenant(self) -> str:
        i = self.incident
        return i.tenant or ", ".join(i.tenants)

    @property
    def impact_start(self) -> datetime:
        """The first alert's start (when the breach began), else when the incident opened."""
        i = self.incident
        return min([i.opened_at, *(a.starts_at for a in self.alerts), *filter(None, [i.first_alert_at])])

    @property
    def detected_at(self) -> datetime:
        return self.incident.opened_at

    @property
    def mitigated_at(self) -> datetime | None:
        applied = [m.at for m in self.mitigations if m.kind == "applied"]
        return min(applied) if applied else None

    @property
    def resolved_at(self) -> datetime | None:
        return self.incident.resolved_at

    def until(self, moment: datetime | None) -> timedelta | None:
        return None if moment is None else max(moment - self.impact_start, timedelta(0))

    @property
    def time_to_detect(self) -> timedelta | None:
        return self.until(self.detected_at)

    @property
    def time_to_mitigate(self) -> timedelta | None:
        return self.until(self.mitigated_at)

    @property
    def time_to_resolve(self) -> timedelta | None:
        """To the resolve, or to ``now`` while it is still open (the resolve modal's duration)."""
        return self.until(self.resolved_at or self.now)

    @property
    def root_cause(self) -> VerdictFact | None:
        """The latest diagnosis that named a scenario, else the latest triage that did, else the
        latest verdict of any kind."""
        for pick in (
            lambda v: v.step == "diagnose" and v.scenario,
            lambda v: v.step == "triage" and v.scenario,
            lambda v: True,
        ):
            chosen = [v for v in self.verdicts if pick(v)]
            if chosen:
                return chosen[-1]
        return None

    @property
    def active_mitigations(self) -> list[MitigationFact]:
        """Applied and not undone since."""
        return [m for m in self.mitigations if m.kind == "applied" and not m.undone]

    def kind(self, kind: str) -> tuple[TimelineEvent, ...]:
        return self.other_events.get(kind, ())


def _degradations(alerts: Sequence[Alert], events: Sequence[TimelineEvent]) -> list[Degradation]:
    """Each alert with the highest value it was notified with (the webhook events keep each one)."""
    values: dict[str, list[float]] = {}
    for e in events:
        if e.kind.startswith("alert.") and (v := _float(e.details.get("value"))) is not None:
            values.setdefault(_text(e.details.get("fingerprint")), []).append(v)
    found = []
    for a in alerts:
        sli = a.labels.get("sli", "")
        seen = [*values.get(a.fingerprint, []), *filter(None, [_float(a.annotations.get("value"))])]
        found.append(
            Degradation(
                tenant=a.tenant,
                sli=sli,
                name=SLI_NAMES.get(sli, sli or "SLI"),
                value=max(seen) if seen else None,
                slo=_float(a.annotations.get("slo")),
                status=a.status,
                started_at=a.starts_at,
                ended_at=a.ends_at if a.status == "resolved" else None,
            )
        )
    return found


def _verdict(e: TimelineEvent) -> VerdictFact:
    d = e.details
    raw = d.get("findings")
    findings = tuple(
        FindingLine(str(k), _text(v.get("status")), _text(v.get("summary")))
        for k, v in (raw.items() if isinstance(raw, dict) else ())
        if isinstance(v, dict)
    )
    evidence = d.get("evidence")
    return VerdictFact(
        at=e.at,
        actor=e.actor,
        step=e.kind.split(".", 1)[0],
        scenario=d.get("scenario") or None,
        headline=e.text,
        evidence=tuple(_text(x) for x in evidence) if isinstance(evidence, list) else (),
        findings=findings,
    )


def _shown(value: Any) -> str:
    return "(unset)" if value is None else str(value)


def _changes(raw: Any) -> tuple[Change, ...]:
    if isinstance(raw, dict):
        raw = [{"key": k, **v} for k, v in raw.items() if isinstance(v, dict)]
    if not isinstance(raw, list):
        return ()
    return tuple(
        Change(
            _text(c.get("key")),
            _shown(c.get("before")),
            _shown(c.get("after")),
            _NAMESPACE.sub("", _text(c.get("object"))),
        )
        for c in raw
        if isinstance(c, dict)
    )


def _check(e: TimelineEvent) -> CheckFact | None:
    ok = e.details.get("ok")
    if not isinstance(ok, bool):
        ok = {"passed": True, "failed": False}.get(e.kind.rsplit(".", 1)[-1])
    if ok is None:
        return None
    plan_id = e.details.get("plan_id")
    text = e.details.get("summary") or _EMOJI.sub("", e.text, count=1)
    return CheckFact(e.at, e.actor, ok, str(text), str(plan_id) if plan_id else None)


def _mitigation(e: TimelineEvent, planned: dict[str, tuple[str, str]]) -> MitigationFact:
    d = e.details
    plan_id = str(d["plan_id"]) if d.get("plan_id") else None
    changes = _changes(d.get("changes"))
    plan_action, planned_by = planned.get(plan_id or "", ("", e.actor))
    action = _text(d.get("action")) or plan_action or e.text.split(" ", 1)[0]
    target = _text(d.get("target")) or ", ".join(dict.fromkeys(c.target for c in changes if c.target))
    return MitigationFact(
        at=e.at,
        actor=e.actor,
        kind=e.kind.split(".", 1)[1],
        plan_id=plan_id,
        action=action,
        target=target,
        changes=changes,
        planned_by=planned_by,
        confirmed_by=_text(d.get("confirmed_by")) or e.actor,
        approved_by=d.get("approved_by") or None,
        restart=d.get("restart") or None,
        text=e.text,
    )


def _with_checks(mitigations: list[MitigationFact], checks: list[CheckFact]) -> list[MitigationFact]:
    """Each applied mitigation with its checks (by plan id; a check without one belongs to the
    latest mitigation before it), undone when a later undo changed the same action and objects."""
    applied = [m for m in mitigations if m.kind == "applied"]
    own: dict[int, list[CheckFact]] = {id(m): [] for m in applied}
    by_plan = {m.plan_id: m for m in applied if m.plan_id}
    for c in checks:
        # A check of another plan (an undo's) belongs to no applied mitigation.
        owner = by_plan.get(c.plan_id) if c.plan_id else next((m for m in reversed(applied) if m.at <= c.at), None)
        if owner is not None:
            own[id(owner)].append(c)
    undos = [(u.at, u.action, u.target) for u in mitigations if u.kind == "undone"]
    return [
        replace(
            m, checks=tuple(own[id(m)]), undone=any(at >= m.at and (a, t) == (m.action, m.target) for at, a, t in undos)
        )
        if m.kind == "applied"
        else m
        for m in mitigations
    ]


def build_facts(
    incident: Incident, alerts: Sequence[Alert], events: Sequence[TimelineEvent], *, now: datetime
) -> IncidentFacts:
    """Facts from records already read (pure: the benchmark and the tests call it directly)."""
    verdicts, mitigations, checks = [], [], []
    other: dict[str, list[TimelineEvent]] = {}
    planned: dict[str, tuple[str, str]] = {}  # plan id -> (action, who planned it)
    for e in events:
        if e.kind in VERDICT_KINDS:
            verdicts.append(_verdict(e))
        elif e.kind in (APPLIED, UNDONE):
            mitigations.append(_mitigation(e, planned))
        elif (e.kind == "check" or e.kind.startswith("check.")) and (check := _check(e)) is not None:
            checks.append(check)
        else:
            if e.kind == PLANNED and e.details.get("plan_id"):
                action = e.details.get("action") or e.text.split(":", 1)[0]
                planned[str(e.details["plan_id"])] = (str(action), e.actor)
            other.setdefault(e.kind, []).append(e)
    return IncidentFacts(
        incident=incident,
        alerts=tuple(alerts),
        events=tuple(events),
        degraded=tuple(_degradations(alerts, events)),
        verdicts=tuple(verdicts),
        mitigations=tuple(_with_checks(mitigations, checks)),
        checks=tuple(checks),
        now=now,
        other_events={k: tuple(v) for k, v in other.items()},
    )


async def load_facts(store: Store, incident_id: int, *, now: datetime) -> IncidentFacts:
    """Read the incident, its alerts and its whole timeline (three short reads)."""
    incident = await store.get(incident_id)
    return build_facts(incident, await store.alerts(incident_id), await store.timeline(incident_id), now=now)
