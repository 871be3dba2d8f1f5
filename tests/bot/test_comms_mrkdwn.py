"""Slack's side of the typed timeline, without a sandbox: the message templates escaped for
mrkdwn, Slack text read back as plain text, timeline lines (status, incidents) and the RCA
reminder written in mrkdwn from data, and the same timeline in a terminal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.slack.comms_ops import reminder_text
from bot.slack.mrkdwn import SLACK, escape, link, mention, plain_text
from bot.slack.render_incident import incidents_blocks, status_blocks
from bot.slack.render_timeline import line
from bot.terminal.timeline import timeline_text
from commands.comms import Templates, investigating, load_facts, stakeholder_resolved
from commands.comms.lifecycle import OverdueRca
from commands.config import Comms
from commands.incidents import IncidentLine, IncidentStatus, status_of
from commands.timeline import Entry, read_timeline
from commands.timeline.events import (
    ChangeRef,
    CheckRan,
    CommandRun,
    MitigationApplied,
    NotePinned,
    SilenceChanged,
    VerdictReached,
)
from integrations.store import AlertIn, Store
from tests.commands.comms_script import BREACH, LABELS, RESOLVED, TENANT, at, script_incident, sqlite_store
from tests.store.fixtures import FakeClock

INJECTIONS = ["<!channel>", "<!here|here>", "<@U_ADMIN>", "<http://evil.example|click here>", "a & b > c"]
AT = datetime(2031, 5, 4, 10, 4, 20, tzinfo=UTC)


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


@pytest.fixture
async def comms_store(tmp_path: Path) -> AsyncIterator[tuple[Store, FakeClock]]:
    async with sqlite_store(tmp_path) as pair:
        yield pair


def test_every_interpolated_value_is_escaped_and_template_text_is_not(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "<!here> {{ a }} | {{ b }} | {{ c | upper }} | {{ d ~ '!' }}\n")
    templates = Templates(tmp_path, messages=SLACK)
    text = templates.render("t.md.j2", {"a": "<!channel>", "b": "<http://x|y>", "c": "<@u1>", "d": "&"})
    assert text == "<!here> &lt;!channel&gt; | &lt;http://x|y&gt; | &lt;@U1&gt; | &amp;!\n"


@pytest.mark.parametrize("value", [*INJECTIONS, "{{ 7 * 7 }}", "{% for x in range(9) %}x{% endfor %}", "{# c #}"])
def test_user_text_is_data_never_template_code(tmp_path: Path, value: str) -> None:
    write(tmp_path, "t.md.j2", "[{{ note }}]")
    text = Templates(tmp_path, messages=SLACK).render("t.md.j2", {"note": value})
    assert text == f"[{escape(value)}]\n"
    assert "<" not in text and ">" not in text


def test_escape_filter_escapes_once_for_slack(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "{{ a | e }} {{ a | escape | e }} {{ q | e }}")
    assert Templates(tmp_path, messages=SLACK).render("t.md.j2", {"a": "<!channel>", "q": 'it\'s "x"'}) == (
        '&lt;!channel&gt; &lt;!channel&gt; it\'s "x"\n'
    )


def test_link_and_mention_filters_only_emit_markup_for_checked_values(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "{{ u | link(label) }} {{ bad | link(label) }} {{ who | mention }} {{ bot | mention }}")
    text = Templates(tmp_path, messages=SLACK).render(
        "t.md.j2",
        {
            "u": "https://grafana.example/d/x?a=1&b=2",
            "bad": "javascript:alert(1)|<!channel>",
            "label": "dash <b>",
            "who": "U_ALICE",
            "bot": "<!channel>",
        },
    )
    assert (
        text == "<https://grafana.example/d/x?a=1&amp;b=2|dash &lt;b&gt;> dash &lt;b&gt; <@U_ALICE> &lt;!channel&gt;\n"
    )


async def test_edited_fields_are_data_in_slack(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    facts = await load_facts(store, await script_incident(store, clock), now=RESOLVED)
    draft = stakeholder_resolved(facts, Comms()).with_fields(
        root_cause="<!channel> {{ 7 * 7 }}",
        resolution="see <http://evil.example|this> & that",
        next_steps="  ping <@U_CEO>  ",
    )
    text = draft.render(Templates(messages=SLACK))
    assert "*Root cause:* &lt;!channel&gt; {{ 7 * 7 }}\n" in text
    assert "*Resolution:* see &lt;http://evil.example|this&gt; &amp; that\n" in text
    assert "*Next steps:* ping &lt;@U_CEO&gt;\n" in text


async def test_alert_text_cannot_inject_a_slack_notice(comms_store: tuple[Store, FakeClock]) -> None:
    store, _ = comms_store
    incident, _ = await store.open_or_get_incident(TENANT, title="t")
    labels = {**LABELS, "sli": "<!channel> <http://x|y>"}
    await store.record_alert(incident.id, AlertIn("fp", TENANT, "firing", BREACH, labels=labels))
    draft = investigating(await load_facts(store, incident.id, now=at(10, 5)), Comms())
    assert "We are investigating a degraded &lt;!channel&gt; &lt;http://x|y&gt; for your tenant" in draft.render(
        Templates(messages=SLACK)
    )


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("plain words", "plain words"),
        ("<@U_ALICE> and <@U_BOB|bob>", "@U_ALICE and @U_BOB"),
        ("<!channel> <!here|here> <!subteam^S1|@oncall>", "@channel @here @oncall"),
        (
            "see <https://x.example/a?b=1&amp;c=2|the board> or <https://y.example>",
            "see the board (https://x.example/a?b=1&c=2) or https://y.example",
        ),
        ("in <#C123|incidents>", "in #incidents"),
        ("a &lt;b&gt; &amp;lt; c", "a <b> &lt; c"),
    ],
)
def test_slack_text_read_back_as_plain_text(slack: str, plain: str) -> None:
    assert plain_text(slack) == plain


def test_mention_and_link_check_what_they_are_given() -> None:
    assert (mention("U_ALICE"), mention("bot"), mention("<!channel>")) == ("<@U_ALICE>", "bot", "&lt;!channel&gt;")
    assert link("https://x.example/?a=1&b=2", "x <y>") == "<https://x.example/?a=1&amp;b=2|x &lt;y&gt;>"
    assert link("http://x.example/a|<!channel>", "board") == "board"


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            CommandRun(verb="diagnose", text="diagnose t-blue <!channel>"),
            "10:04 UTC :keyboard: <@U_ALICE>: `/flk diagnose t-blue &lt;!channel&gt;`",
        ),
        (
            VerdictReached(step="diagnose", scenario="policy", headline="tol_D <b> 1.5 → 1.1 & more"),
            "10:04 UTC :microscope: <@U_ALICE>: diagnose: tol_D &lt;b&gt; 1.5 → 1.1 &amp; more",
        ),
        (
            MitigationApplied(
                plan_id="p1",
                action="quota",
                tenant="t-blue",
                changes=(ChangeRef(object="configmap/tenant-t-blue", key="token_rate", before=None, after="200"),),
                confirmed_by="U_BOB",
            ),
            "10:04 UTC :hammer_and_wrench: <@U_ALICE>: quota applied"
            " (configmap/tenant-t-blue: token_rate (unset) → 200), confirmed by <@U_BOB>",
        ),
        (
            CheckRan(n=2, of=2, ok=False, plan_id="p1", summary="escalations 3.1% > SLO 2%"),
            "10:04 UTC :x: <@U_ALICE>: SLO check 2/2 failed: escalations 3.1% &gt; SLO 2%",
        ),
        (
            SilenceChanged(kind="silence.expired", silence_id="s-1", gone=True),
            "10:04 UTC :bell: <@U_ALICE>: silence `s-1` already gone from Alertmanager",
        ),
        (
            NotePinned(text="see <http://evil.example|this>", author="U_ALICE"),
            "10:04 UTC :pushpin: <@U_ALICE>: see &lt;http://evil.example|this&gt;",
        ),
    ],
)
def test_timeline_lines_in_slack(event: object, expected: str) -> None:
    assert line(Entry(AT, "U_ALICE", event)) == expected  # type: ignore[arg-type]


def test_a_long_line_is_cut_before_it_is_escaped() -> None:
    said = line(Entry(AT, "bot", NotePinned(text="<" * 300, author="bot")), limit=10)
    assert said == "10:04 UTC :pushpin: bot: " + "&lt;" * 9 + "…"


async def test_status_and_incidents_show_typed_lines(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    incident_id = await script_incident(store, clock, resolve=False)
    status = await status_of(store, TENANT)
    _, blocks = status_blocks(status)
    text = blocks[0].text.text  # type: ignore[attr-defined]
    assert "• 10:25 UTC :pushpin: <@U_CAROL>: tenant confirms traffic is back &lt;!channel&gt;" in text
    assert "• 10:40 UTC :small_blue_diamond: pagerduty: acknowledged by the on-call engineer" in text
    last = status.recent[-1]
    _, rows = incidents_blocks([IncidentLine(status.incident, 90.0, last)])
    assert "last: 10:40 UTC :small_blue_diamond: pagerduty: acknowledged by the on-call engineer" in rows[0].text.text  # type: ignore[attr-defined]
    entries = await read_timeline(store, incident_id)
    assert IncidentStatus(status.incident, status.alerts, entries[-8:]) == status


async def test_the_timeline_in_a_terminal(comms_store: tuple[Store, FakeClock]) -> None:
    store, clock = comms_store
    entries = await read_timeline(store, await script_incident(store, clock))
    text = timeline_text(entries).splitlines()
    assert len(text) == len(entries)
    assert text[4] == "10:03:00 U_ALICE  /flk diagnose t-blue policy"
    assert text[-1] == "11:21:30 U_ALICE  open → resolved"


@pytest.mark.parametrize(
    ("due", "text"),
    [
        (
            OverdueRca(7, "t-blue", timedelta(hours=48, minutes=3)),
            ":memo: The RCA for incident #7 (t-blue) is due: resolved 2 d 3 min ago and no RCA has been posted"
            " (runbook §7). `/flk rca t-blue` drafts it from the timeline.",
        ),
        (
            OverdueRca(8, None, None),
            ":memo: The RCA for incident #8 (the isolation breach) is due: resolved a while ago and no RCA has been"
            " posted (runbook §7). `/flk rca` drafts it from the timeline.",
        ),
    ],
)
def test_the_rca_reminder_is_worded_in_slack_from_data(due: OverdueRca, text: str) -> None:
    assert reminder_text(due) == text
