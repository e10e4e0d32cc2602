"""A tiny, escaping HTML builder: the report's only way to write markup.

Every plain ``str`` that reaches the page passes through :func:`html.escape`; only
:class:`Html` values (built here, from escaped parts) pass unchanged. So a track titled
``<script>alert(1)</script>`` or a file named ``"><img src=x onerror=...>`` ends up as text,
without each call site having to remember to escape it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Html", "dotted", "el", "esc", "fmt", "join", "key_values", "table"]

LONG_TEXT = 24  # characters; longer text in a table cell may wrap anywhere


class Html(str):
    """Markup that is already safe; :func:`esc` passes it through unchanged."""

    __slots__ = ()


def esc(value: Any) -> Html:
    """``value`` as safe markup: :class:`Html` unchanged, anything else escaped as text."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    """Concatenate parts, escaping the plain strings among them."""
    return Html(sep.join(esc(p) for p in parts if p is not None))


def el(tag: str, *children: Any, **attrs: Any) -> Html:
    """An element: ``el("a", "text", href=url, class_="x")``.

    Attribute names lose one trailing underscore (``class_`` -> ``class``) and turn ``_`` into
    ``-`` (``aria_label``); ``None`` and ``False`` omit the attribute, ``True`` writes it bare.
    Attribute values are always escaped, so they cannot close their quotes.
    """
    parts = [tag]
    for name, value in attrs.items():
        if value is None or value is False:
            continue
        name = name.removesuffix("_").replace("_", "-")
        parts.append(name if value is True else f'{name}="{esc(value)}"')
    opening = "<" + " ".join(parts) + ">"
    if tag in _VOID:
        return Html(opening)
    return Html(f"{opening}{join(children)}</{tag}>")


_VOID = frozenset({"img", "meta", "link", "br", "hr", "source", "col", "input"})


def fmt(value: Any) -> str:
    """A value as a table shows it: floats to 5 significant digits, booleans in lower case."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.5g}"
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def table(
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    *,
    caption: Any = None,
    row_classes: Sequence[str | None] | None = None,
    row_headers: bool = True,
) -> Html:
    """A table in a horizontally scrolling wrapper (wide tables must not widen a phone's page).

    Cells that are not :class:`Html` are formatted with :func:`fmt` and escaped. With
    ``row_headers`` the first cell of each row is a ``<th scope="row">``.
    """
    head = el("thead", el("tr", *(el("th", _cell(h), scope="col") for h in header)))
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            if j == 0 and row_headers:
                cells.append(el("th", dotted(value), scope="row"))
            else:
                # long text (paths, titles) may wrap anywhere, so it does not force a phone to
                # scroll sideways; numbers never wrap
                long = isinstance(value, str) and len(value) > LONG_TEXT
                cells.append(el("td", _cell(value), class_="long" if long else None))
        cls = row_classes[i] if row_classes is not None and i < len(row_classes) else None
        body.append(el("tr", *cells, class_=cls))
    cap = el("caption", caption) if caption is not None else None
    return el("div", el("table", cap, head, el("tbody", *body)), class_="scroll")


def dotted(name: Any) -> Html:
    """A dotted setting name (``data.embedded_songs``) that may wrap after its dots."""
    if isinstance(name, Html) or not isinstance(name, str):
        return _cell(name)
    return Html(".<wbr>".join(esc(part) for part in name.split(".")))


def _cell(value: Any) -> Html:
    return value if isinstance(value, Html) else esc(fmt(value))


def key_values(pairs: Mapping[str, Any] | Iterable[tuple[str, Any]], **kwargs: Any) -> Html:
    """A two-column table of names and values."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return table(("", "value"), ((k, v) for k, v in items), **kwargs)
