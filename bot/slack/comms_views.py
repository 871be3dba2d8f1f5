"""The modals of `/flk notify` and `/flk resolve`: a draft's editable fields as inputs, the facts
as context, and what the person typed read back on submit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.slack.limits import clip
from commands.comms import Draft

NOTIFY, RESOLVE = "flk_notify", "flk_resolve"
TENANT_UPDATE = "tenant_update"
# Slack's limit for a plain_text_input's value and for private_metadata.
MAX_INPUT, MAX_METADATA = 3000, 3000

LABELS = {
    "severity": "Severity",
    "degraded": "What is degraded",
    "eta": "ETA for resolution",
    "root_cause": "Root cause",
    "resolution": "Resolution",
    "duration": "Duration",
    "next_steps": "Next steps",
}
MULTILINE = {"degraded", "root_cause", "resolution", "next_steps"}


@dataclass(frozen=True)
class Target:
    """What a submitted modal is about, carried in its private_metadata."""

    incident_id: int
    tenant: str | None

    def metadata(self) -> str:
        return json.dumps({"incident": self.incident_id, "tenant": self.tenant})

    @classmethod
    def of(cls, view: dict[str, Any]) -> Target | None:
        try:
            raw = json.loads(view.get("private_metadata") or "")
            tenant = raw.get("tenant")
            return cls(int(raw["incident"]), str(tenant) if tenant is not None else None)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def _inputs(draft: Draft) -> list[Block]:
    return [
        InputBlock(
            block_id=name,
            label=PlainTextObject(text=LABELS.get(name, name.replace("_", " ").capitalize())),
            element=PlainTextInputElement(
                action_id=name,
                initial_value=clip(value, MAX_INPUT),
                multiline=name in MULTILINE,
                max_length=MAX_INPUT,
            ),
        )
        for name, value in draft.fields.items()
    ]


def notify_view(target: Target, draft: Draft, destination: str) -> View:
    """``destination``: a line saying where the notice goes (or why it stays in the thread)."""
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=clip(destination, 3000))),
        *_inputs(draft),
        ContextBlock(elements=[MarkdownTextObject(text="Typed text is sent as written (no mentions or links).")]),
    ]
    return _modal(NOTIFY, "Tenant notice", "Send", target, blocks)


def resolve_view(target: Target, draft: Draft, stakeholders: str, tenant_update: str | None) -> View:
    """``tenant_update``: the checkbox label offering the tenant's resolved update, or None."""
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=clip(stakeholders, 3000))), *_inputs(draft)]
    if tenant_update is not None:
        option = Option(value="send", label=clip(tenant_update, 75))
        blocks.append(
            InputBlock(
                block_id=TENANT_UPDATE,
                label=PlainTextObject(text="Tenant"),
                optional=True,
                element=CheckboxesElement(action_id=TENANT_UPDATE, options=[option], initial_options=[option]),
            )
        )
    return _modal(RESOLVE, "Resolve incident", "Resolve", target, blocks)


def _modal(callback_id: str, title: str, submit: str, target: Target, blocks: list[Block]) -> View:
    return View(
        type="modal",
        callback_id=callback_id,
        private_metadata=target.metadata(),
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        blocks=blocks,
    )


def submitted(view: dict[str, Any], names: list[str]) -> dict[str, str]:
    """The typed value of each of ``names`` (a field left out of the state keeps the draft's)."""
    values = view.get("state", {}).get("values", {})
    typed = {}
    for name in names:
        value = values.get(name, {}).get(name, {}).get("value")
        if isinstance(value, str):
            typed[name] = value[:MAX_INPUT]
    return typed


def typed_fields(view: dict[str, Any]) -> dict[str, str]:
    """Every text input of a submitted modal, by its name (the draft's field names)."""
    values = view.get("state", {}).get("values", {})
    names = [name for name, inputs in values.items() if name != TENANT_UPDATE and name in inputs]
    return submitted(view, names)


def tenant_update_chosen(view: dict[str, Any]) -> bool:
    state = view.get("state", {}).get("values", {}).get(TENANT_UPDATE, {}).get(TENANT_UPDATE, {})
    return any(o.get("value") == "send" for o in state.get("selected_options") or [])
