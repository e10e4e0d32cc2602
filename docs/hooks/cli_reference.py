"""MkDocs hook: the CLI reference and the training flag table, written from the argparse parser
at build time, so the pages say what ``noizenet VERB --help`` says and cannot drift from it.

A page asks for them with a marker line: ``<!-- noizenet:cli-reference -->`` (every verb and
sub-verb: usage, help, each flag with its value, default and help) or
``<!-- noizenet:train-flags -->`` (train's flags beside the config field each one sets).
Registered under ``hooks:`` in mkdocs.yml; tests/test_docs.py checks what it writes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

# the checkout's own code, even where another noizenet is installed
SRC = Path(__file__).resolve().parents[2] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

CLI_MARKER = "<!-- noizenet:cli-reference -->"
TRAIN_MARKER = "<!-- noizenet:train-flags -->"
_DEFAULT = re.compile(r"\s*\(default: (.*)\)$", re.S)


def verbs(
    parser: argparse.ArgumentParser, name: str = "noizenet", summary: str | None = None
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(``noizenet VERB [SUB]``, its one-line help, its parser) for the program and every verb."""
    yield name, parser.description if summary is None else summary, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for sub, p in action.choices.items():
                yield from verbs(p, f"{name} {sub}", helps.get(sub, ""))


def _text(s: str) -> str:
    """Plain text for a Markdown table cell: nothing in it is read as markup."""
    s = " ".join(s.split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_\[\]|{}#])", r"\\\1", s)


def _split_default(action: argparse.Action) -> tuple[str, str]:
    """(help without its default, the default) as --help shows them."""
    help_text = action.help or ""
    m = _DEFAULT.search(help_text)
    if m:
        return help_text[: m.start()], m.group(1)
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return help_text, ""
    return help_text, str(action.default)


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        return "{" + ",".join(map(str, action.choices)) + "}"
    return str(action.metavar or action.dest.rpartition(".")[2].upper())


def _flag_rows(parser: argparse.ArgumentParser, fields: set[str] | None = None) -> list[str]:
    """One table row per flag; with ``fields`` (config field names), a column naming the field
    a flag sets."""
    cols = ["flag", "value", "default", *(["config field"] if fields else []), "help"]
    head = "| " + " | ".join(cols) + " |"
    rows = [head, "|---" * head.count(" | ") + "|---|"]
    for action in parser._actions:
        if action.help is argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        help_text, default = _split_default(action)
        flags = ", ".join(f"`{f}`" for f in action.option_strings) or f"`{action.dest}`"
        value = _value(action)
        cells = [flags, f"`{value}`" if value else "", f"`{default}`" if default else ""]
        if fields:
            cells.append(f"`{action.dest}`" if action.dest in fields else "")
        rows.append("| " + " | ".join([*cells, _text(help_text)]) + " |")
    return rows


def cli_reference() -> str:
    """Markdown for every verb and sub-verb of ``noizenet``."""
    from noizenet.cli import build_parser

    out: list[str] = []
    for path, summary, p in verbs(build_parser()):
        depth = path.count(" ")
        out.append(f"{'#' * min(depth + 2, 4)} `{path}`")
        out.append("")
        if summary:
            out.append(_text(summary))
            out.append("")
        if p.description and p.description != summary:
            out.append(_text(p.description))
            out.append("")
        usage = " ".join(p.format_usage().split()).removeprefix("usage: ")
        out += ["```text", usage, "```", ""]
        out += _flag_rows(p)
        out.append("")
    return "\n".join(out)


def train_flags() -> str:
    """Markdown table of ``noizenet train``'s flags and the config field each one sets."""
    from noizenet.cli import build_parser
    from noizenet.config import flag_specs

    train = next(p for path, _, p in verbs(build_parser()) if path == "noizenet train")
    return "\n".join(_flag_rows(train, {s.dest for s in flag_specs()})) + "\n"


def on_page_markdown(markdown: str, **_: object) -> str:
    """MkDocs event: put the generated Markdown where a page has a marker."""
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    if TRAIN_MARKER in markdown:
        markdown = markdown.replace(TRAIN_MARKER, train_flags())
    return markdown
