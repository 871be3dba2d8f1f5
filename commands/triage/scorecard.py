"""Every scenario weighed, every time: triage's evidence for and against each of A–D as typed
items, each with the finding it comes from and its weight.

Weights are few and plain: a strong lead (3) is a change that explains the breach and began with
it; a moderate one (2) the symptom alone; a weak one (1) a change that fits in time but not in
kind. Onset matters more than size: quota rejections that rose when the breach began are a
strong lead at any share of ingest over a trickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from commands.config import RunbookConfig
from commands.models import SCENARIO_LETTER, Report, Scenario, Status
from commands.promql import pct
from commands.signals import SAME_TIME_S

STRONG, MODERATE, WEAK = 3.0, 2.0, 1.0
SCENARIOS: tuple[Scenario, ...] = ("signatures", "escalations", "quota", "policy")
# A promotion or flip up to this long after the breach's computed start still counts as before it.
START_SLACK_S = 300
# Rejections under this share of ingest are the rate limit doing its job.
TRICKLE = 0.01


@dataclass(frozen=True)
class Evidence:
    scenario: Scenario
    weight: float  # > 0 for the scenario, < 0 against it
    text: str
    finding: str  # the finding it was read from


@dataclass
class Scorecard:
    breaching: dict[str, float | None]  # SLI -> its breach's start (None: start unknown)
    items: list[Evidence] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # facts that weigh on no scenario (other tenants)

    def add(self, scenario: Scenario, weight: float, text: str, finding: str) -> None:
        self.items.append(Evidence(scenario, weight, text, finding))

    def score(self, scenario: Scenario) -> float:
        return sum(e.weight for e in self.items if e.scenario == scenario)

    def for_(self, scenario: Scenario) -> list[Evidence]:
        """What speaks for it, strongest first (weight 0: context it cites without weighing)."""
        return sorted((e for e in self.items if e.scenario == scenario and e.weight >= 0), key=lambda e: -e.weight)

    def against(self, scenario: Scenario) -> list[Evidence]:
        return [e for e in self.items if e.scenario == scenario and e.weight < 0]

    def ranked(self) -> list[tuple[Scenario, float]]:
        """Scenarios with some support, best first (ties in the runbook's order)."""
        scored = [(s, self.score(s)) for s in SCENARIOS]
        return sorted((x for x in scored if x[1] > 0), key=lambda x: -x[1])

    @property
    def started(self) -> float | None:
        known = [t for t in self.breaching.values() if t is not None]
        return min(known) if known else None


def _data(report: Report, key: str) -> dict:
    finding = report.finding(key)
    return finding.data if finding and finding.status is not Status.ERROR else {}


def clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M UTC")


def _before(when: float, start: float, window_s: float) -> bool:
    return -START_SLACK_S <= start - when <= window_s


def score(report: Report, config: RunbookConfig) -> Scorecard | None:
    """The scorecard of a triage report; None when neither SLI could be read."""
    esc = _data(report, "sli.escalations").get("ratio")
    err = _data(report, "sli.signatures").get("ratio")
    if esc is None and err is None:
        return None
    trend = _data(report, "health.trend")
    esc_slo, err_slo = config.slo.escalation_ratio, config.slo.signature_error_ratio
    breaching: dict[str, float | None] = {}
    if esc is not None and esc > esc_slo:
        breaching["escalations"] = trend.get("escalations breach_start")
    if err is not None and err > err_slo:
        breaching["signatures"] = trend.get("signature errors breach_start")
    card = Scorecard(breaching)
    if not breaching:
        return card
    _signatures(card, report, err, err_slo, config)
    _escalations(card, esc, esc_slo)
    _quota(card, report, config)
    _policy(card, report, config)
    others = _data(report, "identify.others").get("others", [])
    if others:
        card.notes.append(f"{len(others)} other tenant(s) breaching too: isolation may be broken")
    return card


def _signatures(card: Scorecard, report: Report, err: float | None, slo: float, config: RunbookConfig) -> None:
    if err is None:
        return
    if "signatures" not in card.breaching:
        card.add("signatures", -STRONG, f"signature-error ratio {pct(err)} within SLO {pct(slo)}", "sli.signatures")
        return
    # Nothing but scenario A puts signature errors over their SLO.
    card.add("signatures", STRONG + WEAK, f"signature-error ratio {pct(err)} > SLO {pct(slo)}", "sli.signatures")
    start = card.breaching["signatures"]
    events = _data(report, "changes.events")
    times = events.get("secret_event_times", [])
    if start is not None and any(_before(t, start, config.timeouts.rollout_window_s) for t in times):
        card.add("signatures", WEAK, "the signing secret changed just before the breach", "changes.events")
    for text in events.get("secret_events", [])[:3]:
        card.add("signatures", 0.0, f"secret event: {text}", "changes.events")


def _escalations(card: Scorecard, esc: float | None, slo: float) -> None:
    if esc is None:
        return
    if "escalations" not in card.breaching:
        card.add("escalations", -STRONG, f"escalation ratio {pct(esc)} within SLO {pct(slo)}", "sli.escalations")
        return
    # The symptom itself: the data-quality scenario, unless a change below explains it better.
    card.add("escalations", MODERATE, f"escalation ratio {pct(esc)} > SLO {pct(slo)}", "sli.escalations")


def _quota(card: Scorecard, report: Report, config: RunbookConfig) -> None:
    quota = _data(report, "health.quota")
    share, onset, start = quota.get("share", 0.0), quota.get("onset"), card.started
    if not quota or quota.get("rate", 0.0) <= 0:
        return
    said = f"quota rejections at {quota['rate']:.1f}/s, {share:.0%} of ingest"
    if share > config.slo.quota_exceeded_share:
        card.add("quota", STRONG, f"{said} (over {config.slo.quota_exceeded_share:.0%})", "health.quota")
    with_breach = onset is not None and start is not None and abs(onset - start) <= SAME_TIME_S
    if with_breach:
        weight = STRONG if share >= TRICKLE else WEAK + 0.5
        card.add(
            "quota", weight, f"rejections rose at {clock(onset)}, with the breach ({clock(start)})", "health.quota"
        )
    elif share >= TRICKLE and onset is not None and start is not None:
        card.add("quota", -WEAK, f"{said}, at this level since {clock(onset)}: before the breach", "health.quota")


def _policy(card: Scorecard, report: Report, config: RunbookConfig) -> None:
    start, window = card.started, config.timeouts.rollout_window_s
    if start is None:
        return
    registry = _data(report, "changes.registry")
    promoted, version = registry.get("active_created_at"), registry.get("active_version")
    if promoted is not None and _before(promoted, start, window):
        lag = (start - promoted) / 60
        if registry.get("diff"):
            text = f"policy {version} promoted {clock(promoted)}, {lag:.0f} min before the breach: "
            text += "; ".join(registry["diff"])
            card.add("policy", STRONG + (WEAK if lag <= 15 else 0), text, "changes.registry")
        else:
            text = f"policy {version} promoted {clock(promoted)}, {lag:.0f} min before the breach, "
            card.add("policy", WEAK, text + "but it changed none of the tenant's thresholds", "changes.registry")
    flips = [c for c in _data(report, "changes.flags").get("changes", []) if _before(c["at"], start, window)]
    if flips:
        latest = max(flips, key=lambda c: c["at"])
        lag = (start - latest["at"]) / 60
        card.add(
            "policy",
            STRONG,
            f"{latest['text']} at {clock(latest['at'])}, {lag:.0f} min before the breach",
            "changes.flags",
        )


def letters(scenarios: tuple[Scenario, ...]) -> str:
    return " or ".join(sorted(SCENARIO_LETTER[s] for s in scenarios))
