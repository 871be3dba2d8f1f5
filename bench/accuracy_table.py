"""Confusion tables and the summary figures of the accuracy benchmark, from scored tenants.

Pure functions: ``tabulate(results)`` gives one section per verdict (``triage``, ``diagnose``
with triage's scenario, ``diagnose_all``), each with its accuracy on breaching tenants, the
confusion of truth against call, the healthy tenants called breaching, the breaching ones
called healthy, the inconclusive calls, and the misses per cause with examples.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from bench.accuracy_labels import SCENARIOS
from bench.accuracy_run import Said, TenantResult
from bench.common import figure
from sandbox.world.truth import ALL_CAUSES

EXAMPLES = 6
GOALS = {"triage": 0.98, "diagnose": 0.95, "diagnose_all": 0.95}
TITLES = {
    "triage": "triage names the right scenario",
    "diagnose": "diagnose (triage's scenario) names the right cause",
    "diagnose_all": "diagnose all names the right cause",
}
Section = dict[str, Any]


def _truth_label(result: TenantResult, verdict: str) -> str:
    truth = result.truth
    if truth.healthy:
        return "healthy"
    return str(truth.scenario if verdict == "triage" else truth.cause)


def _said(result: TenantResult, verdict: str) -> Said:
    said: Said = getattr(result, verdict)
    return said


def _example(result: TenantResult, said: Said) -> dict[str, Any]:
    t = result.truth
    return {
        "seed": result.seed,
        "tenant": result.tenant,
        "said": f"{said.scenario or '-'}: {said.headline}" + (f" (asked {said.asked})" if said.asked else ""),
        "truth": f"{t.cause or 'healthy'}" + (f" ({t.variant})" if t.variant else ""),
        "magnitude": t.magnitude,
        "onset_min": round(t.onset_s / 60, 1) if t.onset_s is not None else None,
        "group": t.group,
    }


def _share(right: int, of: int) -> float | None:
    return round(right / of, 4) if of else None


def section(results: list[TenantResult], verdict: str) -> Section:
    """One verdict's confusion table, accuracy and misses."""
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    # truth label -> [(call, example)]
    misses: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    right = breaching = healthy_as_breach = breach_as_healthy = inconclusive = overturned = 0
    for r in results:
        said, truth = _said(r, verdict), _truth_label(r, verdict)
        call = str(said.call)
        confusion[truth][call] += 1
        inconclusive += call == "inconclusive"
        overturned += said.overturns is not None
        if r.truth.healthy:
            if said.alarm:
                healthy_as_breach += 1
                misses["healthy"].append((call, _example(r, said)))
            continue
        breaching += 1
        if call == truth or (call == "inconclusive" and truth in said.among):
            right += 1
            continue
        breach_as_healthy += call == "healthy"
        misses[truth].append((call, _example(r, said)))
    order = ["healthy", *(SCENARIOS if verdict == "triage" else ALL_CAUSES)]
    return {
        "right": right,
        "breaching": breaching,
        "accuracy": _share(right, breaching),
        "healthy_called_breaching": healthy_as_breach,
        "breaching_called_healthy": breach_as_healthy,
        "inconclusive": inconclusive,
        "overturned_triage": overturned,
        "confusion": {label: dict(confusion[label].most_common()) for label in order if label in confusion},
        "misses": {
            label: {
                "of": sum(confusion[label].values()),
                "missed": len(misses[label]),
                "said": dict(Counter(call for call, _ in misses[label]).most_common()),
                "examples": [example for _, example in misses[label][:EXAMPLES]],
            }
            for label in order
            if misses[label]
        },
    }


def _bands(results: list[TenantResult]) -> dict[str, Any]:
    """Accuracy of each verdict by how far over the SLO, how old the breach, and isolation."""
    breaching = [r for r in results if not r.truth.healthy]

    def band(key: Callable[[TenantResult], str]) -> dict[str, Any]:
        groups: dict[str, list[TenantResult]] = defaultdict(list)
        for r in breaching:
            groups[key(r)].append(r)
        return {
            name: {"tenants": len(rs), **{v: _share(sum(_ok(r, v) for r in rs), len(rs)) for v in GOALS}}
            for name, rs in sorted(groups.items())
        }

    def magnitude(r: TenantResult) -> str:
        m = r.truth.magnitude
        return "a: 1.2-2x SLO" if m < 2 else "b: 2-5x SLO" if m < 5 else "c: 5-20x SLO"

    def age(r: TenantResult) -> str:
        minutes = (r.truth.onset_s or 0) / 60
        return "a: < 20 min" if minutes < 20 else "b: 20-60 min" if minutes < 60 else "c: > 1 h"

    return {
        "magnitude": band(magnitude),
        "onset": band(age),
        "isolation": band(lambda r: "isolation breach" if r.truth.group else "alone"),
    }


def _ok(result: TenantResult, verdict: str) -> bool:
    said, truth = _said(result, verdict), _truth_label(result, verdict)
    return str(said.call) == truth or (said.call == "inconclusive" and truth in said.among)


def tabulate(results: Iterable[TenantResult]) -> dict[str, Any]:
    scored = list(results)
    errors = [(r.seed, r.tenant, e) for r in scored for e in r.errors]
    return {
        "tenants": len(scored),
        "breaching": sum(not r.truth.healthy for r in scored),
        "healthy": sum(r.truth.healthy for r in scored),
        **{verdict: section(scored, verdict) for verdict in GOALS},
        "bands": _bands(scored),
        "errors": {
            "count": len(errors),
            "examples": [{"seed": s, "tenant": t, "error": e} for s, t, e in errors[:EXAMPLES]],
        },
    }


def summary(tables: dict[str, Any], run_s: float, cpu_s: float, worlds: int, goal_s: float) -> list[dict[str, Any]]:
    rows = []
    for verdict, goal in GOALS.items():
        s = tables[verdict]
        share = s["accuracy"] or 0.0
        rows.append(
            figure(
                f"{TITLES[verdict]} (breaching tenants)",
                f"{share:.1%} ({s['right']} of {s['breaching']})",
                f"≥ {goal:.0%}",
                share >= goal,
            )
        )
    for key, title in (
        ("healthy_called_breaching", f"healthy tenants called breaching (of {tables['healthy']})"),
        ("breaching_called_healthy", f"breaching tenants called healthy (of {tables['breaching']})"),
    ):
        counts = {v: tables[v][key] for v in GOALS}
        rows.append(figure(title, _per_verdict(counts), "0", not any(counts.values())))
    inconclusive = {v: tables[v]["inconclusive"] for v in GOALS}
    rows.append(figure(f"inconclusive verdicts (of {tables['tenants']})", _per_verdict(inconclusive), "reported", True))
    rows.append(
        figure(
            "accuracy benchmark run time",
            f"{run_s / 60:.1f} min for {worlds} worlds, {tables['tenants']} tenants ({cpu_s / 60:.1f} CPU-min)",
            f"≤ {goal_s / 60:.0f} min",
            run_s <= goal_s,
        )
    )
    return rows


def _per_verdict(counts: dict[str, int]) -> str:
    return f"triage {counts['triage']}, diagnose {counts['diagnose']}, diagnose all {counts['diagnose_all']}"


def misses_text(tables: dict[str, Any]) -> str:
    """The per-cause breakdown of misses, for the terminal."""
    lines = []
    for verdict in GOALS:
        s = tables[verdict]
        lines.append(f"{verdict}: {s['accuracy']:.1%} right ({s['right']} of {s['breaching']} breaching)")
        for label, miss in s["misses"].items():
            said = ", ".join(f"{k} ×{n}" for k, n in miss["said"].items())
            lines.append(f"  {label}: missed {miss['missed']} of {miss['of']}: {said}")
            for e in miss["examples"][:2]:
                lines.append(
                    f"    e.g. seed {e['seed']} {e['tenant']} ({e['truth']}, {e['magnitude']}x, "
                    f"{e['onset_min']} min): {e['said']}"
                )
    return "\n".join(lines)
