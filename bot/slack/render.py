"""How findings, reports and verdicts look in Slack. Block Kit from slack_sdk, within its limits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.slack.limits import MAX_CONTEXT_TEXT, MAX_HEADER_TEXT, MAX_SECTION_TEXT, clip, fit
from bot.slack.mrkdwn import escape
from bot.slack.render_history import history_blocks
from bot.text_report import basis_line
from commands.models import SCENARIO_LETTER, SEVERITY, Finding, Probe, Report, Status
from commands.registry import REGISTRY

ICON = {
    Status.OK: ":white_check_mark:",
    Status.WARN: ":warning:",
    Status.BREACH: ":red_circle:",
    Status.ERROR: ":x:",
    Status.UNKNOWN: ":grey_question:",
}
PENDING = ":hourglass_flowing_sand:"
EVIDENCE_INLINE = 5


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, MAX_SECTION_TEXT))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, MAX_CONTEXT_TEXT))])


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=clip(text, MAX_HEADER_TEXT))


def command_button(command: str, label: str, *, primary: bool = False) -> ButtonElement | None:
    """A button that runs `/flk <command>`; only for verbs the bot knows."""
    verb = command.split()[0]
    if verb not in REGISTRY:
        return None
    return ButtonElement(
        text=clip(label, 75),
        action_id=f"flk_run:{command}"[:255],
        value=command[:2000],
        style="primary" if primary else None,
    )


def button_label(command: str) -> str:
    """`diagnose acme quota` -> "Diagnose C"; `diagnose acme escalations,quota` -> "Diagnose B + C";
    `mitigate acme key-window` -> "Mitigate: key-window"."""
    verb, *rest = command.split()
    details = rest[1:]
    if verb == "diagnose" and details:
        return "Diagnose " + " + ".join(SCENARIO_LETTER.get(s, s) for s in details[0].split(","))
    return f"{verb.capitalize()}: {' '.join(details)}" if details else verb.capitalize()


def progress_blocks(
    step: str, tenant: str, probes: Iterable[Probe], done: dict[str, Finding], *, finished: bool = False
) -> list[Block]:
    """The live checklist; once ``finished`` with every probe done, one line of counts: the
    report below it holds the findings, so that the thread shows each one once."""
    probes = list(probes)
    head = f"*{step.capitalize()}* of `{tenant}` · {len(done)}/{len(probes)} probes done"
    if finished and len(done) == len(probes):
        counts = Counter(f.status for f in done.values())
        tally = " · ".join(f"{ICON[s]} {counts[s]}" for s in SEVERITY if counts[s])
        return [_context(f"{head} · {tally} · findings in the report below" if tally else head)]
    lines = []
    for probe in probes:
        finding = done.get(probe.key)
        if finding is None:
            lines.append(f"{PENDING} {probe.title}")
        else:
            lines.append(f"{ICON[finding.status]} {probe.title} · {escape(clip(finding.summary, 140))}")
    return [_context(head), SectionBlock(text=_md("\n".join(lines)))]


def _line(finding: Finding) -> str:
    return f"{ICON[finding.status]} *{escape(finding.title)}* · {escape(finding.summary)}"


def _new_facts(finding: Finding) -> dict[str, str]:
    """The facts the summary does not already state (a number is said once)."""
    return {k: v for k, v in finding.facts.items() if v not in finding.summary}


def _finding_section(finding: Finding) -> list[Block]:
    text = _line(finding)
    shown = finding.evidence[:EVIDENCE_INLINE]
    if shown:
        text += "\n" + "\n".join(f"• `{escape(clip(line, 300))}`" for line in shown)
    if len(finding.evidence) > EVIDENCE_INLINE:
        text += f"\n_{len(finding.evidence) - EVIDENCE_INLINE} more line(s) in the attached report_"
    blocks: list[Block] = [SectionBlock(text=_md(text))]
    facts = _new_facts(finding)
    if facts:
        blocks.append(_context(" · ".join(f"{escape(k)}: {escape(v)}" for k, v in facts.items())))
    return blocks


def _verdict_blocks(report: Report) -> list[Block]:
    verdict = report.verdict
    if verdict is None:
        return []
    text = f"*{escape(verdict.headline)}*"
    if (basis := basis_line(verdict)) is not None:
        text += f"\n_{escape(basis)}_"
    if verdict.evidence:
        text += "\n" + "\n".join(f"• {escape(e)}" for e in verdict.evidence)
    blocks: list[Block] = [SectionBlock(text=_md(text))]
    buttons = []
    for command in verdict.next_steps:
        button = command_button(command, button_label(command), primary=not buttons)
        if button is not None:
            buttons.append(button)
    if buttons:
        blocks.append(ActionsBlock(elements=buttons[:25]))
    return blocks


def report_blocks(report: Report) -> tuple[list[Block], bool]:
    """The summary of a step: the verdict with its evidence and next steps first, then what is
    wrong (worst first, with its evidence), then what was checked and found healthy, each
    finding once. Returns the blocks and whether something was cut (attach the file)."""
    blocks: list[Block] = [_header(f"{report.step.capitalize()} · {report.tenant} · {report.status.value}")]
    blocks += _verdict_blocks(report)
    rank = {s: n for n, s in enumerate(SEVERITY)}
    wrong = sorted((f for f in report.findings if f.status is not Status.OK), key=lambda f: rank[f.status])
    healthy = [f for f in report.findings if f.status is Status.OK]
    if wrong:
        blocks.append(DividerBlock())
        for finding in wrong:
            blocks.extend(_finding_section(finding))
    if healthy:
        blocks.append(DividerBlock())
        blocks.append(_context(f"*Checked and healthy* ({len(healthy)})"))
        blocks.append(SectionBlock(text=_md("\n".join(_line(f) for f in healthy))))
    if report.history is not None:
        blocks.extend(history_blocks(report.history))
    errors = sum(f.status is Status.ERROR for f in report.findings)
    footer = f"{len(report.findings)} probes in {report.wall_ms:.0f} ms"
    if errors:
        footer += f" · {errors} could not be read (marked :x:)"
    blocks.append(_context(footer))
    cut_evidence = any(len(f.evidence) > EVIDENCE_INLINE for f in report.findings)
    fitted, cut_blocks = fit(blocks)
    return fitted, cut_evidence or cut_blocks


def report_fallback(report: Report) -> str:
    headline = report.verdict.headline if report.verdict else report.status.value
    return clip(f"{report.step} {report.tenant}: {headline}", 300)


def usage_text(message: str) -> str:
    return f":information_source: {escape(message)}"


def help_blocks(lines: list[str]) -> list[Block]:
    return [_header("flk · Tenant SLO Breach runbook"), SectionBlock(text=_md("\n".join(lines)))]


def breaching_blocks(rows: list[tuple[str, str]]) -> list[Block]:
    """rows: (tenant, description), worst first; each with a Triage button."""
    if not rows:
        return [SectionBlock(text=_md(":white_check_mark: No tenant is breaching its SLO right now."))]
    blocks: list[Block] = [_header(f"{len(rows)} tenant(s) breaching now, worst first")]
    for tenant, description in rows[:45]:
        button = command_button(f"triage {tenant}", "Triage")
        blocks.append(SectionBlock(text=_md(f"*{tenant}* · {escape(description)}"), accessory=button))
    if len(rows) > 45:
        blocks.append(_context(f"{len(rows) - 45} more not shown"))
    return blocks


def parent_text(tenant: str, status_line: str) -> str:
    return clip(f":rotating_light: *{escape(tenant)}* · {escape(status_line)}", MAX_SECTION_TEXT)
