"""Message templates: values are data escaped for their medium (Markdown here; Slack's in
tests/bot/test_comms_mrkdwn.py), never template code; a broken template names its file, line and
missing field; an installation's and a tenant's own versions win."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from commands.comms.markdown import markdown_escape
from commands.comms.templates import (
    DEFAULT_FOLDER,
    RCA,
    STAKEHOLDER_RESOLVED,
    TENANT_INVESTIGATING,
    TemplateError,
    Templates,
    duration,
)

INJECTIONS = ["<!channel>", "<!here|here>", "<@U_ADMIN>", "<http://evil.example|click here>", "a & b > c"]


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def test_every_interpolated_value_is_escaped_and_template_text_is_not(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "<b>{{ a }}</b> | {{ b }} | {{ c | upper }} | {{ d ~ ';' }}\n")
    text = Templates(tmp_path).render("t.md.j2", {"a": "<!channel>", "b": "[x](http://y)", "c": "<i>", "d": "&amp"})
    assert text == "<b>&lt;!channel></b> | [x]\\(http://y) | &lt;I> | &amp;amp;\n"


@pytest.mark.parametrize("value", [*INJECTIONS, "{{ 7 * 7 }}", "{% for x in range(9) %}x{% endfor %}", "{# c #}"])
def test_user_text_is_data_never_template_code(tmp_path: Path, value: str) -> None:
    write(tmp_path, "t.md.j2", "[{{ note }}]")
    text = Templates(tmp_path).render("t.md.j2", {"note": value})
    assert text == f"[{markdown_escape(value)}]\n"
    assert not re.search(r"<[A-Za-z/!?]|&#?[A-Za-z0-9]+;|\]\(", text.replace("&lt;", "").replace("&amp;", ""))


def test_escape_filter_escapes_once(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "{{ a | e }} {{ a | escape | e }} {{ q | e }}")
    assert Templates(tmp_path).render("t.md.j2", {"a": "<b>", "q": 'it\'s "x"'}) == '&lt;b> &lt;b> it\'s "x"\n'


def test_a_missing_templates_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match=r"the templates folder does not exist$"):
        Templates(tmp_path / "nowhere")


def test_missing_field_names_template_line_and_field(tmp_path: Path) -> None:
    write(tmp_path, TENANT_INVESTIGATING, "Tenant {{ tenant }}\n\nETA: {{ eta }}\n{{ eta_typo }}\n")
    with pytest.raises(TemplateError) as caught:
        Templates(tmp_path).render(TENANT_INVESTIGATING, {"tenant": "t1", "eta": "soon"})
    error = caught.value
    assert str(error) == f"template {TENANT_INVESTIGATING}, line 4: missing field `eta_typo`"
    assert (error.template, error.line, error.field) == (TENANT_INVESTIGATING, 4, "eta_typo")


def test_missing_attribute_in_a_tenant_template_names_that_file(tmp_path: Path) -> None:
    write(tmp_path / "t-blue", RCA, "# RCA\n{% for v in verdicts %}\n- {{ v.headline }} {{ v.nope }}\n{% endfor %}\n")
    with pytest.raises(TemplateError) as caught:
        Templates(tmp_path).render(RCA, {"verdicts": [{"headline": "h"}]}, tenant="t-blue")
    assert str(caught.value) == f"template t-blue/{RCA}, line 3: missing field `nope`"


def test_syntax_error_and_unknown_template_are_named(tmp_path: Path) -> None:
    write(tmp_path, STAKEHOLDER_RESOLVED, "ok\n{% if %}\n")
    templates = Templates(tmp_path)
    with pytest.raises(TemplateError, match=rf"^template {STAKEHOLDER_RESOLVED}, line 2: syntax error: "):
        templates.render(STAKEHOLDER_RESOLVED, {})
    with pytest.raises(TemplateError, match=r"^template nope\.md\.j2: not found in "):
        templates.render("nope.md.j2", {})
    with pytest.raises(TemplateError, match="a template name is a file name"):
        templates.render("../etc/passwd", {})


def test_the_sandbox_refuses_python_internals(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "line 1\n{{ tenant.__class__.__mro__ }}\n")
    with pytest.raises(TemplateError) as caught:
        Templates(tmp_path).render("t.md.j2", {"tenant": "t1"})
    assert caught.value.line == 2
    assert "SecurityError" in caught.value.reason


def test_runtime_error_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "a\nb\n{{ n / 0 }}\n")
    with pytest.raises(TemplateError, match=r"^template t\.md\.j2, line 3: ZeroDivisionError"):
        Templates(tmp_path).render("t.md.j2", {"n": 1})


def test_tenant_folder_wins_then_installation_folder_then_defaults(tmp_path: Path) -> None:
    write(tmp_path / "t-blue", TENANT_INVESTIGATING, "blue's own: {{ tenant }}")
    write(tmp_path, STAKEHOLDER_RESOLVED, "installation's: {{ tenant }}")
    templates = Templates(tmp_path)
    folder, packaged = tmp_path.resolve(), DEFAULT_FOLDER.resolve()
    assert templates.render(TENANT_INVESTIGATING, {"tenant": "t-blue"}, tenant="t-blue") == "blue's own: t-blue\n"
    assert templates.source(TENANT_INVESTIGATING, "t-blue") == folder / "t-blue" / TENANT_INVESTIGATING
    assert templates.source(TENANT_INVESTIGATING, "t-green") == packaged / TENANT_INVESTIGATING
    assert templates.source(TENANT_INVESTIGATING) == packaged / TENANT_INVESTIGATING
    green = templates.render(STAKEHOLDER_RESOLVED, {"tenant": "t-green"}, tenant="t-green")
    assert green == "installation's: t-green\n"
    assert templates.source(STAKEHOLDER_RESOLVED, "t-blue") == folder / STAKEHOLDER_RESOLVED
    assert templates.source(RCA, "t-blue") == packaged / RCA


def test_a_malformed_tenant_never_reaches_the_loader(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "default")
    write(tmp_path.parent / "x", "t.md.j2", "outside the folder")
    assert Templates(tmp_path).render("t.md.j2", {}, tenant="../x") == "default\n"


def test_an_edited_template_applies_to_the_next_render(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "first")
    templates = Templates(tmp_path)
    assert templates.render("t.md.j2", {}) == "first\n"
    path = tmp_path / "t.md.j2"
    path.write_text("second")
    later = path.stat().st_mtime + 2  # a later mtime, even on coarse file-system clocks
    os.utime(path, (later, later))
    assert templates.render("t.md.j2", {}) == "second\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (45 * 60 + 59, "45 min"),
        (3600, "1 h"),
        (86400 + 300, "1 d 5 min"),
        (83 * 60 + 30, "1 h 23 min"),
        (26 * 3600 + 5 * 60, "1 d 2 h 5 min"),
        (None, "—"),
        (-5, "—"),
    ],
)
def test_duration_format(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text
    if seconds is not None:
        assert duration(timedelta(seconds=seconds)) == text


def test_utc_filter_converts_other_zones(tmp_path: Path) -> None:
    write(tmp_path, "t.md.j2", "{{ t | utc }} · {{ t | utc('seconds') }} · {{ t | utc('time') }}")
    local = datetime(2031, 1, 1, 1, 30, 5, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))
    text = Templates(tmp_path).render("t.md.j2", {"t": local})
    assert text == "2031-01-01 01:30 UTC · 2031-01-01 01:30:05 UTC · 01:30:05\n"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("7.3% > SLO 2% & rising", "7.3% > SLO 2% & rising"),
        ("<script>alert(1)</script>", "&lt;script>alert(1)&lt;/script>"),
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
        ("[click](javascript:alert(1))", "[click]\\(javascript:alert(1))"),
        ("&#x3C;b&#x3E; &copy;", "&amp;#x3C;b&amp;#x3E; &amp;copy;"),
        ("<http://evil.example|click here>", "&lt;http://evil.example|click here>"),
        ("<!channel> <!here|here>", "&lt;!channel> &lt;!here|here>"),
        ("<mailto:a@b.example>", "&lt;mailto:a@b.example>"),
        # Data from the typed timeline is as typed: nothing is un-escaped, an entity shows as written.
        ("a &lt;b&gt; &amp; c", "a &amp;lt;b&amp;gt; &amp;amp; c"),
    ],
)
def test_documents_escape_for_markdown(tmp_path: Path, value: str, shown: str) -> None:
    # The RCA is a Markdown file: a viewer renders HTML and links, so only those are disarmed.
    write(tmp_path, RCA, "{{ note }} | {{ note | e }}")
    text = Templates(tmp_path).render(RCA, {"note": value})
    assert text == f"{shown} | {shown}\n"


def test_document_filters_write_markdown(tmp_path: Path) -> None:
    write(
        tmp_path,
        RCA,
        "{{ u | link(label) }} {{ p | link('p') }} {{ bad | link(label) }} {{ c | code }} {{ who | mention }}",
    )
    text = Templates(tmp_path).render(
        RCA,
        {
            "u": "https://grafana.example/d/x?a=1&b=2",
            "p": "https://wiki.example/Runbook_(SLO)",
            "bad": "javascript:alert(1)",
            "label": "dash <b>",
            "c": "a<b>&c",
            "who": "U_BOB",
            "people": {"U_BOB": "Bob <b>"},
        },
    )
    assert text == (
        "[dash &lt;b>](https://grafana.example/d/x?a=1&b=2) [p](https://wiki.example/Runbook_%28SLO%29) "
        "dash &lt;b> `a<b>&c` Bob &lt;b>\n"
    )
