"""The typed timeline: every event survives the store as it was written, reads back typed (or as
``legacy`` when a row does not fit), is told in words by every edge without its text becoming
markup, and the legacy mapping (the migration's) never makes a row unreadable."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.render_timeline import line
from bot.terminal.timeline import timeline_text
from commands.comms.markdown import event_markdown
from commands.models import Finding, Report, Status
from commands.timeline import Entry, Person, append, describe, entry, plain, read_timeline
from commands.timeline.events import Event, LegacyEvent, SliValue, VerdictReached, event_data, event_from
from commands.timeline.steps import verdict_reached
from integrations.store import Store, TimelineEvent
from integrations.store.legacy import LegacyRow, typed

AT = datetime(2031, 5, 4, 10, 0, tzinfo=UTC)
EVENT_TYPES = get_args(get_args(Event)[0])
finite = st.floats(allow_nan=False, allow_infinity=False)


def _json_ready(event: Event) -> bool:
    """JSON (the store's column) has no NaN or infinity; an event never carries one."""
    try:
        json.dumps(event_data(event), allow_nan=False)
    except ValueError:
        return False
    return True


events = st.one_of(*(st.builds(cls) for cls in EVENT_TYPES)).filter(_json_ready)
# What a Markdown viewer or Slack would act on, if it reached the output unescaped.
MARKDOWN_ACTIVE = re.compile(r"<[A-Za-z/!?]|&#?[A-Za-z0-9]+;|\]\(")
# A CommonMark code span (a run of backticks closed by a run of the same length): literal inside.
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
SLACK_ACTIVE = re.compile(r"<[^>]*>")


def row(kind: str, data: dict[str, Any], text: str | None = None) -> TimelineEvent:
    return TimelineEvent(1, 1, AT, "U_ALICE", kind, data, text)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_every_event_round_trips_through_its_json(event: Event) -> None:
    data = json.loads(json.dumps(event_data(event)))
    assert event_from(event.kind, data) == event
    assert entry(row(event.kind, data)).event == event


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_every_edge_tells_every_event_without_its_text_becoming_markup(event: Event) -> None:
    item = Entry(AT, "U_ALICE", event)
    markdown = event_markdown(item)
    outside_code = CODE_SPAN.sub("", markdown)
    assert not MARKDOWN_ACTIVE.search(outside_code.replace("&lt;", "").replace("&amp;", ""))
    # In Slack, the only markup is a mention of each Slack user the event names.
    named = [s.id for s in describe(event) if isinstance(s, Person) and re.fullmatch(r"[UW][A-Z0-9_]{2,20}", s.id)]
    assert SLACK_ACTIVE.findall(line(item, limit=10_000)) == [f"<@{who}>" for who in ["U_ALICE", *named]]
    assert "U_ALICE" in timeline_text([item], width=10_000)


def test_a_row_that_does_not_fit_its_kind_reads_as_legacy() -> None:
    assert entry(row("check", {"n": "many"}, text="old text")).event == LegacyEvent(
        legacy_kind="check", text="old text"
    )
    assert entry(row("no.such.kind", {})).event == LegacyEvent(legacy_kind="no.such.kind", text="")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
old_kinds = st.sampled_from(
    [
        "incident.opened",
        "incident.tenants_added",
        "state.changed",
        "alert.firing",
        "command",
        "triage.finished",
        "isolation triage.finished",
        "mitigation.planned",
        "mitigation.applied",
        "mitigation.undone",
        "mitigation.failed",
        "mitigation.refused",
        "check.passed",
        "check.whatever",
        "notice.sent",
        "notice.drafted",
        "silence.created",
        "silence.expired",
        "note",
        "slack.thread",
        "grafana.annotated",
        "resolve.posted",
        "rca.posted",
        "pager.ack",
    ]
)
details = st.dictionaries(
    st.sampled_from(
        [
            "plan_id",
            "tenant",
            "tenants",
            "severity",
            "from",
            "to",
            "value",
            "fingerprint",
            "scenario",
            "evidence",
            "findings",
            "changes",
            "confirmed_by",
            "n",
            "of",
            "ok",
            "data",
            "notice",
            "channel",
            "silence_id",
            "ts",
            "fields",
            "reason",
            "annotation_id",
            "filename",
        ]
    ),
    json_values,
    max_size=8,
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(old_kinds, st.text(max_size=40), details, st.none() | st.dictionaries(st.just("plan"), json_values))
def test_the_legacy_mapping_never_makes_a_row_unreadable(kind: str, text: str, given: dict, plan: Any) -> None:
    new_kind, data = typed(LegacyRow(kind, text, given, "U_ALICE", "t-blue"), plan)
    read = entry(row(new_kind, json.loads(json.dumps(data)), text)).event
    if isinstance(read, LegacyEvent):
        assert read.text == text  # the old text, whatever happened to the fields
    plain(describe(read))


def _report(**data: dict[str, Any]) -> Report:
    findings = [Finding(key, key, Status.BREACH if "ratio" in v else Status.OK, "", data=v) for key, v in data.items()]
    return Report("triage", "t1", findings, AT, AT)


@pytest.mark.parametrize(
    ("data", "slis"),
    [
        (
            {"sli.escalations": {"ratio": 0.052, "slo": 0.02}, "sli.signatures": {"ratio": 0.001, "slo": 0.01}},
            (
                SliValue(sli="escalations", value=0.052, slo=0.02),
                SliValue(sli="signature_errors", value=0.001, slo=0.01),
            ),
        ),
        # No samples for the escalations: that probe measured nothing.
        (
            {"sli.escalations": {}, "sli.signatures": {"ratio": 0.2, "slo": 0.05}},
            (SliValue(sli="signature_errors", value=0.2, slo=0.05),),
        ),
        ({"health.quota": {"share": 0.4}}, ()),
    ],
)
def test_a_triage_verdict_carries_the_slis_it_measured(data: dict[str, Any], slis: tuple[SliValue, ...]) -> None:
    verdict = verdict_reached(_report(**data))
    assert (verdict.step, verdict.tenant, verdict.slis) == ("triage", "t1", slis)
    assert [f.key for f in verdict.findings] == list(data)


async def test_entries_are_read_back_in_order(tmp_path: Path) -> None:
    async with await Store.connect(f"sqlite:///{tmp_path / 't.sqlite'}") as store:
        incident, _ = await store.open_or_get_incident("t1", title="breach", actor="U_ALICE", source="command")
        verdict = VerdictReached(step="triage", scenario=None, headline="No breach", breach=False, tenant="t1")
        await append(store, incident.id, "bot", verdict, at=incident.opened_at)
        await store.add_event(incident.id, "pagerduty", "pager.ack", "acked", at=incident.opened_at)
        kinds = [(e.actor, e.kind) for e in await read_timeline(store, incident.id)]
        read = (await read_timeline(store, incident.id))[1].event
    assert kinds == [("U_ALICE", "incident.opened"), ("bot", "verdict"), ("pagerduty", "legacy")]
    assert read == verdict
