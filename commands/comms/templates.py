"""Message templates: Jinja2 in a sandbox, every interpolated value escaped for its medium.

Templates are ``.j2`` files an SRE edits without touching code. Lookup order for ``name``
and a tenant: ``<folder>/<tenant>/<name>``, ``<folder>/<name>``, then the packaged defaults
(``commands/templates/``), so an installation may override one template and a tenant one more.

Values reach a template as data only: user, alert, log and tenant text is never compiled as
template code, and whatever a ``{{ … }}`` prints passes through ``finalize``, which escapes it
for the medium. The messages (notices, the RESOLVED update) are escaped by the ``MessageFormat``
the caller gives: the Slack layer's (``bot/slack/mrkdwn.SLACK``), else Markdown. Only the
``link``, ``mention`` and ``code`` filters emit markup, and only for values they check. A
macro's output is text that was escaped already: print it with ``| safe``.

The RCA and its tenant summary are Markdown files (``DOCUMENTS``), escaped for Markdown
(``commands/comms/markdown``) whoever renders them; their ``event`` filter writes what a
timeline entry says, ``tone`` its kind refined (a check's outcome, an undo, a diagnosis).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    pass_context,
)
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from commands.comms.markdown import cell, event_markdown, markdown_code, markdown_escape, markdown_link
from commands.tenants import well_formed
from commands.timeline import Entry, tone

DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "templates"

TENANT_INVESTIGATING = "tenant_investigating.md.j2"
TENANT_RESOLVED = "tenant_resolved.md.j2"
STAKEHOLDER_RESOLVED = "stakeholder_resolved.md.j2"
RCA = "rca.md.j2"
RCA_TENANT_SUMMARY = "rca_tenant_summary.md.j2"
# Rendered as Markdown documents (uploaded as files), not as Slack messages.
DOCUMENTS = frozenset({RCA, RCA_TENANT_SUMMARY})

_MISSING = (
    re.compile(r"^'([^']+)' is undefined"),
    re.compile(r"has no attribute '([^']+)'"),
    re.compile(r"has no element '?([^']+?)'?$"),
)


class TemplateError(Exception):
    """A template that cannot be found, compiled or rendered. The message names the template
    file, the line and (for a missing value) the field."""

    def __init__(self, template: str, line: int | None, reason: str, field: str | None = None) -> None:
        where = f"template {template}" + (f", line {line}" if line else "")
        super().__init__(f"{where}: {reason}")
        self.template = template
        self.line = line
        self.reason = reason
        self.field = field


@dataclass(frozen=True)
class MessageFormat:
    """How a medium escapes a value (``escape``) and the filters that emit its markup (``link``,
    ``mention``, ``code``, and ``e`` / ``escape``, which escape once), each returning ``Markup``."""

    escape: Callable[[str], str]
    filters: Mapping[str, Callable[..., Markup]]


def _plain_person(ctx: Any, user: Any) -> Markup:
    names = ctx.get("people") or {}
    return Markup(markdown_escape(str(names.get(str(user), user))))


def _escape_once(escape: Callable[[str], str]) -> Callable[[Any], Markup]:
    return lambda value: value if isinstance(value, Markup) else Markup(escape(str(value)))


MARKDOWN = MessageFormat(
    markdown_escape,
    {
        "link": markdown_link,
        "code": markdown_code,
        "mention": pass_context(_plain_person),
        "e": _escape_once(markdown_escape),
        "escape": _escape_once(markdown_escape),
    },
)


def _finalizer(escape: Callable[[str], str]) -> Callable[[Any], str]:
    def finalize(value: Any) -> str:
        # Markup: made by a checked filter, or marked ``|safe`` by the template's author.
        return value if isinstance(value, Markup) else escape("" if value is None else str(value))

    return finalize


def utc(moment: datetime | None, style: str = "minutes") -> str:
    """``2026-03-01 12:05 UTC`` (``seconds``: with seconds; ``time``: ``12:05:00``)."""
    if moment is None:
        return "—"
    moment = moment.astimezone(UTC)
    if style == "time":
        return f"{moment:%H:%M:%S}"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC" if style == "seconds" else f"{moment:%Y-%m-%d %H:%M} UTC"


def duration(span: timedelta | float | None) -> str:
    """``1 h 23 min``, ``45 min``, ``2 h``, ``1 d 3 h 5 min``, ``40 s``; ``—`` when unknown."""
    if span is None:
        return "—"
    seconds = int(span.total_seconds() if isinstance(span, timedelta) else span)
    if seconds < 0:
        return "—"
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n]
    return " ".join(parts)


def percent(value: float | None) -> str:
    """``0.0412`` → ``4.12%`` (three significant digits)."""
    return "—" if value is None else f"{value * 100:.3g}%"


def _relative(filename: str, roots: list[Path]) -> str:
    path = Path(filename)
    for root in roots:
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return path.name


def _template_line(tb: TracebackType | None, roots: list[Path]) -> tuple[str, int] | None:
    """The innermost template frame of a render traceback (Jinja rewrites it to template lines)."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = (_relative(filename, roots), tb.tb_lineno)
        tb = tb.tb_next
    return found


def _missing_field(message: str) -> str | None:
    for pattern in _MISSING:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return None


class Templates:
    """The template folder of an installation (``folder``) over the packaged defaults."""

    def __init__(
        self,
        folder: str | Path | None = None,
        *,
        messages: MessageFormat = MARKDOWN,
        defaults: str | Path = DEFAULT_FOLDER,
    ) -> None:
        if folder is not None and not Path(folder).is_dir():
            # Jinja would skip it silently and every message would fall back to the defaults.
            raise TemplateError(str(folder), None, "the templates folder does not exist")
        self.roots = [Path(p).resolve() for p in (folder, defaults) if p is not None]
        loader = FileSystemLoader([str(r) for r in self.roots])
        self.env = self._environment(loader, messages)
        self.documents = self._environment(loader, MARKDOWN)
        self.documents.filters["event"] = pass_context(lambda ctx, item: event_markdown(item, ctx.get("people")))
        self.documents.filters["tone"] = lambda item: tone(item.event if isinstance(item, Entry) else item)

    @staticmethod
    def _environment(loader: FileSystemLoader, medium: MessageFormat) -> SandboxedEnvironment:
        env = SandboxedEnvironment(
            loader=loader,
            undefined=StrictUndefined,
            finalize=_finalizer(medium.escape),
            autoescape=False,  # finalize escapes for Slack or Markdown; HTML escaping would mangle quotes
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=True,  # an edited template applies from the next message on
        )
        env.filters.update(utc=utc, duration=duration, percent=percent, cell=cell, **medium.filters)
        return env

    def source(self, name: str, tenant: str | None = None) -> Path:
        """The file ``name`` resolves to for ``tenant``."""
        return Path(self._get(name, tenant).filename)

    def _get(self, name: str, tenant: str | None) -> Any:
        if "/" in name or name.startswith("."):
            raise TemplateError(name, None, "a template name is a file name, not a path")
        names = [f"{tenant}/{name}", name] if tenant and well_formed(tenant) else [name]
        env = self.documents if name in DOCUMENTS else self.env
        try:
            return env.select_template(names)
        except TemplateSyntaxError as exc:
            where = _relative(exc.filename, self.roots) if exc.filename else name
            raise TemplateError(where, exc.lineno, f"syntax error: {exc.message}") from None
        except TemplateNotFound:
            raise TemplateError(name, None, "not found in " + ", ".join(str(r) for r in self.roots)) from None

    def render(self, name: str, context: Mapping[str, Any], *, tenant: str | None = None) -> str:
        """Render ``name`` (the tenant's own version when there is one) with ``context`` as data."""
        template = self._get(name, tenant)
        try:
            text = template.render(dict(context))
        except UndefinedError as exc:
            where, line = _template_line(exc.__traceback__, self.roots) or (name, None)
            field = _missing_field(exc.message or "")
            reason = f"missing field `{field}`" if field else (exc.message or "undefined value")
            raise TemplateError(where, line, reason, field) from None
        except (JinjaError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
            where, line = _template_line(exc.__traceback__, self.roots) or (name, None)
            raise TemplateError(where, line, f"{type(exc).__name__}: {str(exc)[:200]}") from None
        return text.strip() + "\n"
