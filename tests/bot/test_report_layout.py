"""How a step's report reads in the thread: the verdict, its evidence and next steps first; what
is wrong, worst first; what is healthy in one list; each finding and each number once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.slack.render import progress_blocks, report_blocks
from commands.models import Finding, Probe, Report, Status, Verdict

START = datetime(2031, 5, 4, 10, 0, tzinfo=UTC)


def _report() -> Report:
    findings = [
        Finding("sli.escalations", "Escalation ratio (5m)", Status.OK, "1.2% (SLO 2%)", facts={"now": "1.2%"}),
        Finding(
            "health.quota",
            "Quota rejections",
            Status.BREACH,
            "7.0/s, 5% of ingest, since 09:58 UTC",
            facts={"now": "7.0/s", "last 1h": "21000"},
            evidence=["429 from 10.1.2.3"],
        ),
        Finding("health.latency", "Latency", Status.WARN, "p99 900 ms", facts={"p95": "400 ms", "p99": "900 ms"}),
        Finding("changes.registry", "Policy registry", Status.ERROR, "registry: 503"),
        Finding("health.trend", "Error trend", Status.OK, "flat over 24 h"),
    ]
    verdict = Verdict(
        "quota",
        "Likely scenario C · quota exceeded (rate limit)",
        evidence=["quota rejections began with the breach"],
        next_steps=["diagnose acme quota"],
        confidence="high",
        rule="onset within 2 min of the breach",
    )
    return Report("triage", "acme", findings, START, START + timedelta(milliseconds=640), verdict)


def _texts(blocks: list) -> list[str]:
    out = []
    for block in blocks:
        d = block.to_dict()
        if d.get("text"):
            out.append(d["text"]["text"])
        out += [e.get("text", "") for e in d.get("elements", []) if isinstance(e.get("text"), str)]
    return out


def test_the_verdict_and_its_next_step_come_first() -> None:
    blocks, _ = report_blocks(_report())
    kinds = [b.type for b in blocks]
    assert kinds[:3] == ["header", "section", "actions"]
    verdict = blocks[1].to_dict()["text"]["text"]
    assert verdict.startswith("*Likely scenario C")
    assert "high confidence: onset within 2 min of the breach" in verdict
    assert blocks[2].to_dict()["elements"][0]["action_id"] == "flk_run:diagnose acme quota"


def test_what_is_wrong_comes_worst_first_and_the_healthy_in_one_list() -> None:
    text = "\n".join(_texts(report_blocks(_report())[0]))
    order = [text.index(t) for t in ("Quota rejections", "Policy registry", "Latency", "Checked and healthy")]
    assert order == sorted(order)
    healthy = text[text.index("Checked and healthy") :]
    assert "Escalation ratio (5m)* · 1.2% (SLO 2%)" in healthy and "Error trend" in healthy


def test_each_finding_and_number_is_said_once() -> None:
    text = "\n".join(_texts(report_blocks(_report())[0]))
    for title in ("Escalation ratio (5m)", "Quota rejections", "Latency", "Policy registry", "Error trend"):
        assert text.count(title) == 1, title
    # Facts the summary already states are not repeated; the others are shown.
    assert text.count("7.0/s") == 1 and text.count("900 ms") == 1 and text.count("1.2%") == 1
    assert "last 1h: 21000" in text and "p95: 400 ms" in text


def test_the_finished_checklist_is_one_line_of_counts() -> None:
    report = _report()
    probes = [Probe(f.key, f.title) for f in report.findings]
    done = {f.key: f for f in report.findings}
    live = progress_blocks("triage", "acme", probes, done)
    assert "Quota rejections" in "\n".join(_texts(live))
    final = progress_blocks("triage", "acme", probes, done, finished=True)
    assert len(final) == 1 and final[0].type == "context"
    line = _texts(final)[0]
    assert "5/5 probes done" in line and ":red_circle: 1" in line and ":white_check_mark: 2" in line
    assert "Quota rejections" not in line
    # A run cut short keeps its checklist: there is no report below it.
    partial = progress_blocks("triage", "acme", probes, dict(list(done.items())[:2]), finished=True)
    assert "Escalation ratio (5m)" in "\n".join(_texts(partial))
