"""How a mitigation looks in Slack: the dry run with Confirm / Cancel, the result with Undo, a
temporary mitigation's expiry with Revert / Extend."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.slack.limits import MAX_SECTION_TEXT, clip
from bot.slack.render import escape
from commands.flows.notices import ExpiryDue
from commands.mitigate import Applied, Plan


def span(seconds: float) -> str:
    """3600 -> "1 h", 5400 -> "1.5 h", 90 -> "1.5 min", 4 -> "4 s"."""
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    return f"{seconds / 60:.3g} min" if seconds >= 60 else f"{seconds:g} s"


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, MAX_SECTION_TEXT)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, 2000))])


def plan_text(plan: Plan) -> str:
    title = "Undo" if plan.undoes else f"Mitigation `{plan.action}`"
    lines = "\n".join(f"• {escape(line)}" for line in plan.lines())
    notes = "".join(f"\n_{escape(note)}_" for note in plan.notes)
    if plan.lasts_s and not plan.undoes:
        notes += f"\n:hourglass: temporary: lasts {span(plan.lasts_s)}, then the thread is asked to revert or extend it"
    return f"*{title} for `{plan.tenant}`: dry run*\n{lines}{notes}"


def plan_blocks(plan: Plan, status: str | None = None, *, dry_run: bool = False, note: str = "") -> list[Block]:
    """The plan; with a final ``status`` its buttons are gone, a ``note`` keeps them."""
    blocks: list[Block] = [_section(plan_text(plan))]
    if plan.needs_second_approver:
        reasons = "; ".join(plan.approval_reasons) or "policy"
        blocks.append(_context(f":busts_in_silhouette: needs two different approvers ({escape(reasons)})"))
    if note:
        blocks.append(_context(note))
    if status:
        blocks.append(_context(status))
        return blocks
    if dry_run:
        blocks.append(_context("`--dry-run`: nothing will be applied."))
        return blocks
    expires = plan.expires_at.strftime("%H:%M UTC")
    blocks.append(_context(f"Plan `{plan.id}` · confirm by {expires} · only members of the authorised groups may"))
    confirm = ConfirmObject(
        title="Apply this change?", text=clip(f"{plan.action} for {plan.tenant}", 300), confirm="Apply", deny="Back"
    )
    blocks.append(
        ActionsBlock(
            elements=[
                ButtonElement(text="Confirm", action_id="flk_confirm", value=plan.id, style="danger", confirm=confirm),
                ButtonElement(text="Cancel", action_id="flk_cancel", value=plan.id),
            ]
        )
    )
    return blocks


def applied_blocks(applied: Applied, by: str, checks: str) -> list[Block]:
    lines = "\n".join(f"• {o.ref} · {escape(str(c))}" for o in applied.objects for c in o.changes)
    restart = f"\n• rollout restart at {applied.restarted_at}" if applied.restarted_at else ""
    title = "Undone" if applied.plan.undoes else f"Applied `{applied.plan.action}`"
    blocks: list[Block] = [
        _section(f":white_check_mark: *{title} for `{applied.plan.tenant}`* by {by}\n{lines}{restart}")
    ]
    blocks.append(_context(checks))
    if applied.until is not None:
        blocks.append(_context(f":hourglass: until {applied.until:%H:%M} UTC: a reminder to revert or extend it then"))
    if not applied.plan.undoes:
        blocks.append(ActionsBlock(elements=[ButtonElement(text="Undo", action_id="flk_undo", value=applied.plan.id)]))
    return blocks


def partial_blocks(applied: Applied, reason: str) -> list[Block]:
    return [
        _section(f":warning: *Half applied for `{applied.plan.tenant}`*: {escape(reason)}"),
        ActionsBlock(
            elements=[
                ButtonElement(text="Retry the restart", action_id="flk_retry_restart", value=applied.plan.id),
                ButtonElement(text="Undo", action_id="flk_undo", value=applied.plan.id),
            ]
        ),
    ]


def expiry_blocks(due: ExpiryDue) -> tuple[str, list[Block]]:
    """The reminder at a temporary mitigation's expiry: Revert / Extend while it is in place."""
    what = f"`{due.action}` for `{escape(due.tenant)}` (plan `{due.plan_id}`)"
    if not due.in_place:
        text = f":white_check_mark: The temporary {what} reached its expiry; it was already undone. Nothing to do."
        return text, [_section(text)]
    text = f":hourglass: The temporary {what} has reached its expiry: revert it, or keep it longer."
    buttons = [ButtonElement(text="Revert", action_id="flk_undo", value=due.plan_id, style="primary")]
    if due.extend_s > 0:
        buttons.append(ButtonElement(text=f"Extend {span(due.extend_s)}", action_id="flk_extend", value=due.plan_id))
    note = "Revert plans the exact undo (confirmed like any plan); only members of the authorised groups may"
    return text, [_section(text), _context(note), ActionsBlock(elements=buttons)]
