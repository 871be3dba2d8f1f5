"""Block Kit checks Slack makes cheaply, reported the way Slack reports them.

Each problem is ``"<what> [json-pointer:/blocks/3/text/text]"``; a non-empty list means the
call fails with ``invalid_blocks`` (messages) or ``invalid_arguments`` (views).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100

_TEXT_TYPES = ("plain_text", "mrkdwn")
_SELECTS = {"static_select", "multi_static_select"}
_OPTION_LISTS = {"radio_buttons": 10, "checkboxes": 10, "overflow": 5}
# Elements whose own fields are not checked beyond their type.
_PLAIN_ELEMENTS = {
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "external_select",
    "multi_external_select",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "number_input",
    "email_text_input",
    "url_text_input",
    "image",
    "rich_text_input",
    "file_input",
    "workflow_button",
    "feedback_buttons",
    "icon_button",
}
_OPAQUE_BLOCKS = {"rich_text", "file", "video", "table", "context_actions"}


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, ptr: str, what: str) -> None:
        self.errors.append(f"{what} [json-pointer:{ptr}]")

    def string(self, value: Any, ptr: str, max_len: int, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(ptr, "must provide a string")
        elif not isinstance(value, str):
            self.fail(ptr, "must provide a string")
        elif required and not value:
            self.fail(ptr, "must be more than 0 characters")
        elif len(value) > max_len:
            self.fail(ptr, f"must be less than {max_len + 1} characters")

    def text(self, obj: Any, ptr: str, max_len: int, *, plain: bool = False, required: bool = True) -> None:
        if obj is None:
            if required:
                self.fail(ptr, "must provide an object")
            return
        if not isinstance(obj, dict):
            self.fail(ptr, "must provide an object")
            return
        if obj.get("type") not in (("plain_text",) if plain else _TEXT_TYPES):
            self.fail(f"{ptr}/type", "must be a valid enum value")
        self.string(obj.get("text"), f"{ptr}/text", max_len, required=True)

    def items(self, value: Any, ptr: str, max_items: int, *, min_items: int = 1) -> list[Any]:
        if not isinstance(value, list):
            self.fail(ptr, "must provide an array")
            return []
        if len(value) < min_items:
            self.fail(ptr, f"must provide at least {min_items} items")
        if len(value) > max_items:
            self.fail(ptr, f"no more than {max_items} items allowed")
        return value

    # --- composition objects -------------------------------------------------------------

    def option(self, opt: Any, ptr: str) -> None:
        if not isinstance(opt, dict):
            self.fail(ptr, "must provide an object")
            return
        self.text(opt.get("text"), f"{ptr}/text", 75)
        self.string(opt.get("value"), f"{ptr}/value", 150, required=True)

    def confirm(self, obj: Any, ptr: str) -> None:
        if not isinstance(obj, dict):
            self.fail(ptr, "must provide an object")
            return
        self.text(obj.get("title"), f"{ptr}/title", 100, plain=True)
        self.text(obj.get("text"), f"{ptr}/text", 300)
        self.text(obj.get("confirm"), f"{ptr}/confirm", 30, plain=True)
        self.text(obj.get("deny"), f"{ptr}/deny", 30, plain=True)

    # --- elements -------------------------------------------------------------------------

    def element(self, el: Any, ptr: str) -> None:
        if not isinstance(el, dict):
            self.fail(ptr, "must provide an object")
            return
        kind = el.get("type")
        self.string(el.get("action_id"), f"{ptr}/action_id", 255)
        if "confirm" in el:
            self.confirm(el["confirm"], f"{ptr}/confirm")
        if "placeholder" in el:
            self.text(el["placeholder"], f"{ptr}/placeholder", 150, plain=True)
        if kind == "button":
            self.text(el.get("text"), f"{ptr}/text", 75, plain=True)
            self.string(el.get("value"), f"{ptr}/value", 2000)
            self.string(el.get("url"), f"{ptr}/url", 3000)
            if el.get("style") not in (None, "primary", "danger"):
                self.fail(f"{ptr}/style", "must be a valid enum value")
        elif kind in _SELECTS:
            if "options" in el:
                for i, opt in enumerate(self.items(el["options"], f"{ptr}/options", 100)):
                    self.option(opt, f"{ptr}/options/{i}")
            elif "option_groups" not in el:
                self.fail(ptr, "must provide either options or option_groups")
        elif kind in _OPTION_LISTS:
            for i, opt in enumerate(self.items(el.get("options"), f"{ptr}/options", _OPTION_LISTS[kind])):
                self.option(opt, f"{ptr}/options/{i}")
        elif kind == "plain_text_input":
            max_length = el.get("max_length", 3000)
            if not isinstance(max_length, int) or not 1 <= max_length <= 3000:
                self.fail(f"{ptr}/max_length", "must be between 1 and 3000")
        elif kind not in _PLAIN_ELEMENTS:
            self.fail(f"{ptr}/type", "must be a valid enum value")

    def elements(self, els: Any, ptr: str, max_items: int) -> None:
        seen: set[str] = set()
        for i, el in enumerate(self.items(els, ptr, max_items)):
            self.element(el, f"{ptr}/{i}")
            action_id = el.get("action_id") if isinstance(el, dict) else None
            if isinstance(action_id, str):
                if action_id in seen:
                    self.fail(f"{ptr}/{i}/action_id", f"duplicate action_id: {action_id}")
                seen.add(action_id)

    # --- blocks ---------------------------------------------------------------------------

    def section(self, b: dict[str, Any], p: str) -> None:
        if "text" not in b and "fields" not in b:
            self.fail(p, "must provide either text or fields")
        if "text" in b:
            self.text(b["text"], f"{p}/text", 3000)
        if "fields" in b:
            for i, f in enumerate(self.items(b["fields"], f"{p}/fields", 10)):
                self.text(f, f"{p}/fields/{i}", 2000)
        if "accessory" in b:
            self.element(b["accessory"], f"{p}/accessory")

    def header(self, b: dict[str, Any], p: str) -> None:
        self.text(b.get("text"), f"{p}/text", 150, plain=True)

    def context(self, b: dict[str, Any], p: str) -> None:
        for i, el in enumerate(self.items(b.get("elements"), f"{p}/elements", 10)):
            ptr = f"{p}/elements/{i}"
            if isinstance(el, dict) and el.get("type") == "image":
                self.string(el.get("alt_text"), f"{ptr}/alt_text", 2000, required=True)
            else:
                self.text(el, ptr, 3000)

    def actions(self, b: dict[str, Any], p: str) -> None:
        self.elements(b.get("elements"), f"{p}/elements", 25)

    def image(self, b: dict[str, Any], p: str) -> None:
        self.string(b.get("alt_text"), f"{p}/alt_text", 2000, required=True)
        if "slack_file" not in b:
            self.string(b.get("image_url"), f"{p}/image_url", 3000, required=True)
        if "title" in b:
            self.text(b["title"], f"{p}/title", 2000, plain=True)

    def input(self, b: dict[str, Any], p: str) -> None:
        self.text(b.get("label"), f"{p}/label", 2000, plain=True)
        if "hint" in b:
            self.text(b["hint"], f"{p}/hint", 2000, plain=True)
        if "element" not in b:
            self.fail(f"{p}/element", "must provide an object")
        else:
            self.element(b["element"], f"{p}/element")

    def markdown(self, b: dict[str, Any], p: str) -> None:
        self.string(b.get("text"), f"{p}/text", 12000, required=True)

    def blocks(self, blocks: Any, ptr: str, max_blocks: int) -> None:
        handlers: dict[str, Callable[[dict[str, Any], str], None]] = {
            "section": self.section,
            "header": self.header,
            "context": self.context,
            "actions": self.actions,
            "image": self.image,
            "input": self.input,
            "markdown": self.markdown,
            "divider": lambda b, p: None,
        }
        if not isinstance(blocks, list):
            self.fail(ptr, "must provide an array")
            return
        if len(blocks) > max_blocks:
            self.fail(ptr, f"no more than {max_blocks} items allowed")
        block_ids: set[str] = set()
        for i, b in enumerate(blocks):
            p = f"{ptr}/{i}"
            if not isinstance(b, dict):
                self.fail(p, "must provide an object")
                continue
            handler = handlers.get(b.get("type"))  # type: ignore[arg-type]
            if handler is not None:
                handler(b, p)
            elif b.get("type") not in _OPAQUE_BLOCKS:
                self.fail(f"{p}/type", f"unsupported block type: {b.get('type')}")
            block_id = b.get("block_id")
            self.string(block_id, f"{p}/block_id", 255)
            if isinstance(block_id, str):
                if block_id in block_ids:
                    self.fail(f"{p}/block_id", f"duplicate block_id: {block_id}")
                block_ids.add(block_id)


def check_blocks(blocks: Any, *, max_blocks: int = MAX_MESSAGE_BLOCKS) -> list[str]:
    """Problems with a message's ``blocks`` (empty when Slack would accept them)."""
    checker = _Checker()
    checker.blocks(blocks, "/blocks", max_blocks)
    return checker.errors


def check_view(view: Any) -> list[str]:
    """Problems with a modal or home tab view object."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.fail("/view", "must provide an object")
        return checker.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.fail("/view/type", "must be a valid enum value")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", 24, plain=True)
        for key in ("submit", "close"):
            if key in view:
                checker.text(view[key], f"/view/{key}", 24, plain=True)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and "submit" not in view:
            checker.fail("/view/submit", "must provide submit when the view has input blocks")
    checker.blocks(view.get("blocks"), "/view/blocks", MAX_VIEW_BLOCKS)
    checker.string(view.get("private_metadata"), "/view/private_metadata", 3000)
    checker.string(view.get("callback_id"), "/view/callback_id", 255)
    checker.string(view.get("external_id"), "/view/external_id", 255)
    return checker.errors
