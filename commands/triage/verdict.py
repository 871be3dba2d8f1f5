"""From triage evidence to the likely runbook scenario (A–D), with the evidence that points to it."""

from __future__ import annotations

from datetime import UTC, datetime

from commands.config import RunbookConfig
from commands.models import SCENARIO_TITLE, Report, Scenario, Status, Verdict
from commands.promql import pct


def _data(report: Report, key: str) -> dict:
    finding = report.finding(key)
    return finding.data if finding and finding.status is not Status.ERROR else {}


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M UTC")


def decide(report: Report, config: RunbookConfig) -> Verdict:
    tenant = report.tenant
    esc = _data(report, "sli.escalations").get("ratio")
    err = _data(report, "sli.signatures").get("ratio")
    quota = _data(report, "health.quota")
    registry = _data(report, "changes.registry")
    trend = _data(report, "health.trend")
    events = _data(report, "changes.events")
    others = _data(report, "identify.others").get("others", [])

    if esc is None and err is None:
        return Verdict(None, "Cannot tell: the SLIs could not be read (see the errors above)")

    esc_breach = esc is not None and esc > config.slo.escalation_ratio
    err_breach = err is not None and err > config.slo.signature_error_ratio
    quota_breach = quota.get("share", 0.0) > config.slo.quota_exceeded_share

    scenario: Scenario | None = None
    evidence: list[str] = []
    if err_breach:
        scenario = "signatures"
        evidence.append(f"signature-error ratio {pct(err)} > SLO {pct(config.slo.signature_error_ratio)}")
        evidence += [f"secret event: {e}" for e in events.get("secret_events", [])[:3]]
    elif quota_breach:
        scenario = "quota"
        evidence.append(f"quota rejections at {quota['rate']:.1f}/s, {quota['share']:.0%} of ingest")
        evidence.append(f"{quota.get('hits_1h', 0):.0f} rate-limit hits in the last hour")
        if esc_breach:
            evidence.append(f"escalation ratio {pct(esc)} rose with them")
    elif esc_breach:
        evidence.append(f"escalation ratio {pct(esc)} > SLO {pct(config.slo.escalation_ratio)}")
        started = trend.get("escalations breach_start")
        promoted = registry.get("active_created_at")
        window = config.timeouts.rollout_window_s
        # A rollout is to blame when the breach began shortly after it (2 min of slack for the
        # 5 m rate window that smooths the start).
        if started and promoted and 0 <= started - promoted + 120 <= window:
            scenario = "policy"
            evidence.append(
                f"policy {registry.get('active_version')} promoted at {_clock(promoted)}, "
                f"breach since {_clock(started)}"
            )
        else:
            scenario = "escalations"
            if started:
                evidence.append(f"breach since {_clock(started)}, with no policy rollout just before it")

    if scenario is None:
        return Verdict(
            None,
            f"No breach: escalations {pct(esc)} (SLO {pct(config.slo.escalation_ratio)}), "
            f"signature errors {pct(err)} (SLO {pct(config.slo.signature_error_ratio)})",
            next_steps=[],
        )
    if others:
        evidence.append(f"{len(others)} other tenant(s) breaching too: isolation may be broken")
    return Verdict(
        scenario,
        f"Likely scenario {SCENARIO_TITLE[scenario]}",
        evidence=evidence,
        next_steps=[f"diagnose {tenant} {scenario}"],
    )
