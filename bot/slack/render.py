"""How findings, reports and verdicts look in Slack. Block Kit from slack_sdk, within its limits."""

from __future__ import annotations

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
from commands.models import SCENARIO_LETTER, Finding, Probe, Report, Status
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
GROUPS = (("sli", "§3.1 Identify"), ("identify", None), ("health", "§3.2 Health"), ("changes", "§3.3 Recent changes"))


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
    """`diagnose acme quota` -> "Diagnose C"; `mitigate acme key-window` -> "Mitigate: key-window"."""
    verb, *rest = command.split()
    details = rest[1:]
    if verb == "diagnose" and details:
        return f"Diagnose {SCENARIO_LETTER.get(details[0], details[0])}"
    return f"{verb.capitalize()}: {' '.join(details)}" if details else verb.capitalize()


def progress_blocks(step: str, tenant: str, probes: Iterable[Probe], done: dict[str, Finding]) -> list[Block]:
    lines = []
    for probe in probes:
        finding = done.get(probe.key)
        if finding is None:
            lines.append(f"{PENDING} {probe.title}")
        else:
            lines.append(f"{ICON[finding.status]} {probe.title} · {escape(clip(finding.summary, 140))}")
    total = len(lines)
    blocks: list[Block] = [
        _context(f"*{step.capitalize()}* of `{tenant}` · {len(done)}/{total} probes done"),
        SectionBlock(text=_md("\n".join(lines))),
    ]
    return blocks


def _finding_section(finding: Finding) -> list[Block]:
    text = f"{ICON[finding.status]} *{escape(finding.title)}* · {escape(finding.summary)}"
    shown = finding.evidence[:EVIDENCE_INLINE]
    if shown:
        text += "\n" + "\n".join(f"• `{escape(clip(line, 300))}`" for line in shown)
    if len(finding.evidence) > EVIDENCE_INLINE:
        text += f"\n_{len(finding.evidence) - EVIDENCE_INLINE} more line(s) in the attached report_"
    blocks: list[Block] = [SectionBlock(text=_md(text))]
    if finding.facts:
        facts = " · ".join(f"{escape(k)}: {escape(v)}" for k, v in finding.facts.items())
        blocks.append(_context(facts))
    return blocks


def report_blocks(report: Report) -> tuple[list[Block], bool]:
    """The summary of a step. Returns the blocks and whether something was cut (attach the file)."""
    verdict = report.verdict
    status = report.status
    blocks: list[Block] = [_header(f"{report.step.capitalize()} · {report.tenant} · {status.value}")]
    if verdict is not None:
        text = f"*{escape(verdict.headline)}*"
        if verdict.evidence:
            text += "\n" + "\n".join(f"• {escape(e)}" for e in verdict.evidence)
        blocks.append(SectionBlock(text=_md(text)))
        buttons = []
        for command in verdict.next_steps:
            button = command_button(command, button_label(command), primary=not buttons)
            if button is not None:
                buttons.append(button)
        if buttons:
            blocks.append(ActionsBlock(elements=buttons[:25]))
    seen_group = None
    for finding in report.findings:
        group = finding.key.split(".")[0]
        title = dict(GROUPS).get(group)
        if title and group != seen_group:
            blocks.append(DividerBlock())
            blocks.append(_context(f"*{title}*"))
        seen_group = group if title else seen_group
        blocks.extend(_finding_section(finding))
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
