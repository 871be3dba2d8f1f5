"""From triage's scorecard to the verdict: the best-supported scenario (A–D) with its confidence,
the rule that set it and the runner-up; inconclusive when the two best are close or both rest on
a strong lead."""

from __future__ import annotations

from commands.config import RunbookConfig
from commands.models import SCENARIO_LETTER, SCENARIO_TITLE, Confidence, Report, Scenario, Status, Verdict
from commands.promql import pct
from commands.triage.scorecard import STRONG, Scorecard, letters, score

# Two scenarios whose scores lie closer than this cannot be told apart.
CLOSE = 1.0
# The best scenario this far ahead of the runner-up is named with high confidence.
CLEAR = 2.0


def decide(report: Report, config: RunbookConfig) -> Verdict:
    card = score(report, config)
    if card is None:
        return Verdict(None, "Cannot tell: the SLIs could not be read (see the errors above)")
    if not card.breaching:
        esc = report.finding("sli.escalations")
        err = report.finding("sli.signatures")
        esc_v, err_v = (f.data.get("ratio") if f else None for f in (esc, err))
        return Verdict(
            None,
            f"No breach: escalations {pct(esc_v)} (SLO {pct(config.slo.escalation_ratio)}), "
            f"signature errors {pct(err_v)} (SLO {pct(config.slo.signature_error_ratio)})",
            confidence="high" if esc_v is not None and err_v is not None else "medium",
            rule="no SLI over its SLO",
        )
    verdict = _verdict(card, report.tenant)
    _mark_cited(report, card, verdict)
    return verdict


def _verdict(card: Scorecard, tenant: str) -> Verdict:
    ranked = card.ranked()
    best, top = ranked[0]
    runner_up, second = ranked[1] if len(ranked) > 1 else (None, 0.0)
    margin = top - second
    strong = [s for s, _ in ranked[:2] if any(e.weight >= STRONG for e in card.for_(s))]
    conflict = runner_up is not None and len(strong) == 2 and "signatures" not in strong
    evidence = [e.text for e in card.for_(best)] + [f"against: {e.text}" for e in card.against(best)]
    if runner_up is not None:
        evidence += [f"for {SCENARIO_LETTER[runner_up]}: {e.text}" for e in card.for_(runner_up)[:2]]
    evidence += card.notes
    lead = card.for_(best)[0].text
    if runner_up is not None and (margin < CLOSE or conflict):
        pair: tuple[Scenario, ...] = tuple(sorted((best, runner_up), key=lambda s: SCENARIO_LETTER[s]))
        why = "both rest on a strong lead" if conflict and margin >= CLOSE else f"scores {top:g} and {second:g}"
        return Verdict(
            best,
            f"Inconclusive: {letters(pair)}",
            evidence,
            [f"diagnose {tenant} {','.join(pair)}"],
            confidence="low",
            rule=f"{letters(pair)} too close to tell apart ({why})",
            runner_up=runner_up,
            inconclusive=pair,
        )
    confidence: Confidence = "high" if margin >= CLEAR else "medium"
    rule = f"{SCENARIO_LETTER[best]} scores {top:g}"
    rule += f", {margin:g} ahead of {SCENARIO_LETTER[runner_up]}" if runner_up else ", no other scenario fits"
    return Verdict(
        best,
        f"Likely scenario {SCENARIO_TITLE[best]}",
        evidence,
        [f"diagnose {tenant} {best}"],
        confidence=confidence,
        rule=f"{rule}: {lead}",
        runner_up=runner_up,
    )


def _mark_cited(report: Report, card: Scorecard, verdict: Verdict) -> None:
    """Evidence the verdict cites is never shown as healthy: its OK findings become WARN."""
    named = verdict.inconclusive or ((verdict.scenario,) if verdict.scenario else ())
    cited = {e.finding for s in named for e in card.for_(s)}
    for f in report.findings:
        if f.key in cited and f.status is Status.OK:
            f.status = Status.WARN
