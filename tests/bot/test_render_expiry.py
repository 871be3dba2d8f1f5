"""The expiry reminder as Slack shows it: Revert (the undo button) and Extend while the mitigation
is in place; once undone, a line saying so and no buttons. Values are text, never markup."""

from __future__ import annotations

from bot.slack.render_mitigation import expiry_blocks
from commands.flows.notices import ExpiryDue


def actions(blocks: list) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["text"]["text"])
        for b in (x.to_dict() for x in blocks)
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def test_in_place_offers_revert_and_extend_by_the_planned_duration() -> None:
    text, blocks = expiry_blocks(ExpiryDue("1a2b3c4d5e6f", "ip-block", "acme", "2026-12-02T20:00:00+00:00", True, 7200))
    assert "has reached its expiry" in text
    assert actions(blocks) == [("flk_undo", "Revert"), ("flk_extend", "Extend 2 h")]
    assert all(
        e["value"] == "1a2b3c4d5e6f"
        for b in (x.to_dict() for x in blocks)
        if b["type"] == "actions"
        for e in b["elements"]
    )


def test_undone_says_so_and_offers_nothing() -> None:
    text, blocks = expiry_blocks(
        ExpiryDue("1a2b3c4d5e6f", "quota", "<!channel>", "2026-12-02T20:00:00+00:00", False, 60)
    )
    assert "already undone" in text and actions(blocks) == []
    assert "<!channel>" not in text


def test_a_mitigation_that_cannot_be_extended_offers_revert_only() -> None:
    _, blocks = expiry_blocks(ExpiryDue("1a2b3c4d5e6f", "key-window", "acme", "2026-12-02T20:00:00+00:00", True, 0))
    assert actions(blocks) == [("flk_undo", "Revert")]
