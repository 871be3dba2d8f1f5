"""`/flk notify`, `resolve`, `rca`, `silence`: what the parser accepts and refuses, and the
communications config."""

from __future__ import annotations

from pathlib import Path

import pytest

import commands.comms  # noqa: F401  (registers the verbs)
from commands.comms import check_silence_duration, parse_duration
from commands.config import ConfigError, RunbookConfig, load_runbook_config
from commands.registry import UsageError, parse


def test_notify_resolve_rca() -> None:
    assert parse("notify").args == {"tenant": None}
    assert parse("notify t-blue").args == {"tenant": "t-blue"}
    assert parse("resolve").args == {"tenant": None}
    assert parse("resolve t-blue").args == {"tenant": "t-blue"}
    assert parse("rca t-blue").args == {"tenant": "t-blue"}
    assert parse("notify t-blue").verb.mutating and parse("resolve").verb.mutating
    assert not parse("rca").verb.mutating


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("notify 'T<!channel>'", "is not a valid tenant id"),
        ("notify a b", "too many arguments"),
        ("resolve t-blue now", "too many arguments"),
        ("rca '<@U1>'", "is not a valid tenant id"),
    ],
)
def test_bad_notify_resolve_rca(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse(text)
    assert "Usage: `/flk " in caught.value.text()


def test_silence_takes_the_rest_as_reason() -> None:
    invocation = parse("silence t-blue 1h30m rollback applied, waiting for the 5m rate")
    assert invocation.verb.name == "silence" and invocation.verb.mutating
    assert invocation.args == {
        "tenant": "t-blue",
        "duration_s": 5400,
        "reason": "rollback applied, waiting for the 5m rate",
    }
    assert parse('silence t-blue 30m "quoted reason"').args["reason"] == "quoted reason"


@pytest.mark.parametrize(
    ("word", "seconds"), [("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("90s", 90), ("2H", 7200)]
)
def test_durations(word: str, seconds: int) -> None:
    assert parse_duration(word) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("silence", "expected a tenant, a duration and a reason"),
        ("silence t-blue 2h", "expected a tenant, a duration and a reason"),
        ("silence t-blue 2 reason", "is not a duration"),
        ("silence t-blue -5m reason", "is not a duration"),
        ("silence t-blue 30x reason", "is not a duration"),
        ("silence t-blue 0m reason", "longer than zero"),
        ("silence t-blue 2h ''", "needs a reason"),
        ("silence T_BLUE 2h reason", "is not a valid tenant id"),
        ("silence t-blue 2h " + "x" * 501, "under 500 characters"),
    ],
)
def test_bad_silences(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        parse(text)
    assert "Usage: `/flk silence <tenant> <duration> <reason>`" in caught.value.text()


def test_silence_maximum_is_configured() -> None:
    config = RunbookConfig.model_validate({"comms": {"silence_max_s": 7200}})
    assert check_silence_duration(7200, config) == 7200
    with pytest.raises(UsageError, match=r"at most 2 h, not 2 h 1 min") as caught:
        check_silence_duration(7260, config)
    assert "Usage: `/flk silence" in caught.value.text()
    assert check_silence_duration(86400, RunbookConfig()) == 86400


def test_comms_config_defaults() -> None:
    comms = RunbookConfig().comms
    assert (comms.eta, comms.rca_reminder_s, comms.timeline_reaction, comms.silence_max_s) == (
        "30 minutes",
        48 * 3600,
        "pushpin",
        24 * 3600,
    )
    assert comms.tenant_channels == {} and comms.stakeholder_channel is None and comms.templates_dir is None
    channels = {"tenant_channels": {"t-blue": "C_TBLUE"}, "stakeholder_channel": "C1"}
    ok = RunbookConfig.model_validate({"comms": channels})
    assert (ok.comms.tenant_channels, ok.comms.stakeholder_channel) == ({"t-blue": "C_TBLUE"}, "C1")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "comms: {tenant_channels: {T-Blue: C1}}",
            "comms.tenant_channels: Value error, 'T-Blue' is not a valid tenant",
        ),
        ("comms: {tenant_channels: {t-blue: '#general'}}", "is not a Slack channel id"),
        ("comms: {stakeholder_channel: general}", "comms.stakeholder_channel"),
        ("comms: {timeline_reaction: ':pushpin:'}", "comms.timeline_reaction"),
        ("comms: {rca_reminder_s: 0}", "comms.rca_reminder_s"),
        ("comms: {eta: ''}", "comms.eta"),
        ("comms: {unknown: 1}", "comms.unknown"),
    ],
)
def test_bad_comms_config_names_the_setting(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "flk.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_runbook_config(path)
