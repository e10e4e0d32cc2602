"""The README and the docs pages name only commands and flags that exist (issue 17): every
``noizenet ...`` line in their shell blocks parses with the real parser, the README stays short
and its links resolve, and the generated CLI reference covers every verb and flag."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path

import pytest

from noizenet.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(?:bash|sh|shell)\n(.*?)^```", re.M | re.S)
REDIRECTS = {">", ">>", "<"}
OPERATORS = {"&&", "||", "|", ";", "&", "(", ")", "$(", *REDIRECTS}


def shell_commands(text: str) -> list[list[str]]:
    """Every command in the page's bash blocks, as words: continuations joined, comments
    dropped, ``a && b | c; d`` split into its commands (quotes respected)."""
    commands = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.commenters = "#"
            lexer.wordchars += ":,@%+^!{}[]$"
            try:
                tokens = [*lexer, ";"]
            except ValueError:  # unbalanced quotes: not a command we could check
                assert "noizenet" not in line, f"cannot split {line!r}"
                continue
            words: list[str] = []
            redirect = False  # the words after < or > name a file, not a command
            for token in tokens:
                if token in OPERATORS:
                    if words and not redirect:
                        commands.append(words)
                    words, redirect = [], token in REDIRECTS
                else:
                    words.append(token)
    return commands


def noizenet_argv(words: list[str]) -> list[str] | None:
    """The arguments after ``noizenet`` (or ``torchrun ... -m noizenet``), else None."""
    if words[:1] == ["noizenet"]:
        return words[1:]
    for i in range(len(words) - 1):
        if words[i : i + 2] == ["-m", "noizenet"]:
            return words[i + 2 :]
    return None


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for words in shell_commands(page.read_text(encoding="utf-8")):
            if noizenet_argv(words) is not None:
                found.append((page.relative_to(ROOT).as_posix(), shlex.join(words)))
    return found


def test_the_pages_show_noizenet_commands():
    pages = {page for page, _ in documented_commands()}
    assert "README.md" in pages and "docs/guide/training.md" in pages
    readme = [c for p, c in documented_commands() if p == "README.md"]
    assert any(c.startswith("noizenet demo") for c in readme)


@pytest.mark.parametrize("page, command", documented_commands())
def test_every_documented_command_parses(page, command):
    argv = noizenet_argv(shlex.split(command))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{page}: `{command}` does not parse: {err.getvalue().strip() or exc}")


def test_the_readme_is_short_and_its_links_resolve():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 150
    for target in re.findall(r"\]\(([^)#\s]+)[^)]*\)", text):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README.md links to missing {target}"


def _hook():
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "docs" / "hooks" / "cli_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_covers_every_verb_and_flag():
    hook = _hook()
    text = hook.cli_reference()
    for path, _, parser in hook.verbs(build_parser()):
        section = text.split(f"`{path}`\n", 1)[1]  # from the verb's heading on
        section = re.split(r"\n#{2,4} `noizenet ", section, maxsplit=1)[0]
        for action in parser._actions:
            if action.help is argparse.SUPPRESS:
                continue
            for flag in action.option_strings:
                assert f"`{flag}`" in section, (path, flag)
    assert "`--random-seed` | `N` | `0`" in text  # flag, value name, default
    train = hook.train_flags()
    assert "`--sr` | `SAMPLE_RATE` | `22050` | `data.sample_rate`" in train
    assert "`--embedded-songs`" in train and "`data.cache_dir`" in train
    page = "x\n" + hook.CLI_MARKER + "\n" + hook.TRAIN_MARKER
    assert hook.CLI_MARKER not in hook.on_page_markdown(page)
