"""Rendering messages from the Jinja2 templates in `templates/` (see `templates/README.md`).

The office may edit templates, so they run in a sandbox with autoescaping on for HTML. A
message's text is assembled from *sections* — one per template used (a digest of referrals, the
overdue items, the reminders …) — placed inside `layout.txt` / `layout.html`. Each section
template defines three blocks: `subject`, `why` (why the recipient receives it) and `body`.
Lookup, first found wins: the office's folder before the shipped one; inside each,
`agencies/<code>/<locale>/…`, `<locale>/…` (for a locale other than `zh`), `agencies/<code>/…`,
then the template itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from wangjian.settings import PROJECT_ROOT

SHIPPED_TEMPLATES = PROJECT_ROOT / "templates"
SECTION_BLOCKS = ("subject", "why", "body")
DEFAULT_LOCALE = "zh"


class RenderError(Exception):
    """A template is missing, broken, or asks for something the message does not have."""


@dataclass(frozen=True)
class Section:
    """Items of one kind told to one recipient, rendered with one template."""

    template: str
    audience: str
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _date_zh(value: date | datetime | None) -> str:
    return "" if value is None else f"{value.year}年{value.month}月{value.day}日"


def _date_en(value: date | datetime | None) -> str:
    return "" if value is None else f"{value:%d %b %Y}".lstrip("0")


def _time_zh(value: datetime | None) -> str:
    """A moment to the minute, for hour limits: 2025年11月4日 14:00."""
    return "" if value is None else f"{_date_zh(value)} {value:%H:%M}"


def _time_en(value: datetime | None) -> str:
    return "" if value is None else f"{_date_en(value)} {value:%H:%M}"


def _autoescape(name: str | None) -> bool:
    # HTML is escaped; plain text must stay as typed (escaping would show `&lt;` to the reader).
    return not (name or "").endswith(".txt")


@lru_cache(maxsize=8)
def template_environment(folders: tuple[Path, ...]) -> SandboxedEnvironment:
    """One sandboxed environment per set of template folders (first folder wins)."""
    env = SandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(str(folder)) for folder in folders]),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["date_zh"] = _date_zh
    env.filters["date_en"] = _date_en
    env.filters["time_zh"] = _time_zh
    env.filters["time_en"] = _time_en
    return env


def template_folders(office_folder: Path | None) -> tuple[Path, ...]:
    return (office_folder, SHIPPED_TEMPLATES) if office_folder else (SHIPPED_TEMPLATES,)


def candidates(name: str, *, locale: str, agency: str | None) -> list[str]:
    """Template names to try for one message, most specific first."""
    names = []
    if locale != DEFAULT_LOCALE:
        if agency:
            names.append(f"agencies/{agency}/{locale}/{name}")
        names.append(f"{locale}/{name}")
    if agency:
        names.append(f"agencies/{agency}/{name}")
    names.append(name)
    return names


class Renderer:
    """Renders the sections of one message for one recipient, in one locale."""

    def __init__(self, env: SandboxedEnvironment, *, locale: str, agency: str | None) -> None:
        self.env, self.locale, self.agency = env, locale, agency

    def _template(self, name: str) -> Template:
        try:
            return self.env.select_template(
                candidates(name, locale=self.locale, agency=self.agency)
            )
        except TemplateError as exc:
            raise RenderError(f"template {name}: {exc}") from exc

    def _blocks(self, name: str, context: dict[str, Any]) -> dict[str, str]:
        template = self._template(name)
        # The subject comes from the text template; an HTML template need not repeat it.
        wanted = [b for b in SECTION_BLOCKS if b != "subject" or name.endswith(".txt")]
        missing = [b for b in wanted if b not in template.blocks]
        if missing:
            raise RenderError(f"template {template.name} lacks block(s) {', '.join(missing)}")
        ctx = template.new_context(context)
        try:
            return {b: "".join(template.blocks[b](ctx)).strip() for b in wanted}
        except TemplateError as exc:
            raise RenderError(f"template {template.name}: {exc}") from exc

    def _whole(self, name: str, context: dict[str, Any]) -> str:
        template = self._template(name)
        try:
            return template.render(context)
        except TemplateError as exc:
            raise RenderError(f"template {template.name}: {exc}") from exc

    def _parts(self, name: str, ext: str, context: dict[str, Any]) -> dict[str, Any]:
        blocks: dict[str, Any] = self._blocks(f"{name}.{ext}", context)
        if ext == "html":
            # Already escaped by the section template; the layout must not escape it again.
            blocks = {k: Markup(v) for k, v in blocks.items()}
        return {"template": name, **blocks}

    def render(self, sections: Sequence[Section], context: dict[str, Any]) -> Rendered:
        """Subject and both bodies of a message made of `sections`."""
        if not sections:
            raise RenderError("a message needs at least one section")
        contexts = [{**context, "items": s.items, "audience": s.audience} for s in sections]
        text_parts = [
            self._parts(s.template, "txt", c) for s, c in zip(sections, contexts, strict=True)
        ]
        # The HTML parts reuse the text subjects (plain strings: the layout escapes them).
        html_parts = [
            {**self._parts(s.template, "html", c), "subject": t["subject"]}
            for s, c, t in zip(sections, contexts, text_parts, strict=True)
        ]
        text_bundle = html_bundle = None
        if len(sections) > 1:
            # Several sections in one message get an overall subject and introduction.
            text_bundle = self._parts("bundle", "txt", {**context, "sections": text_parts})
            html_bundle = {
                **self._parts("bundle", "html", {**context, "sections": html_parts}),
                "subject": text_bundle["subject"],
            }
        subject = (text_bundle or text_parts[0])["subject"]
        text = self._whole(
            "layout.txt",
            {**context, "sections": text_parts, "bundle": text_bundle, "subject": subject},
        )
        html = self._whole(
            "layout.html",
            {**context, "sections": html_parts, "bundle": html_bundle, "subject": subject},
        )
        return Rendered(subject=subject, text=text, html=html)
