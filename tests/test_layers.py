"""Imports point down (DESIGN.md's layers), never in a cycle, and sit at module top unless they
are heavy. Read from the source with ``ast``: lazy imports inside functions count too."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import noizenet

SRC = Path(noizenet.__file__).parent

# DESIGN.md's layers, top to bottom: a module may import its own layer and the ones below.
# A module belongs to the layer of its top-level part (noizenet.train.trainer -> train).
LAYERS: list[tuple[str, ...]] = [
    ("noizenet", "__main__", "cli", "demo", "bench", "studio"),  # verbs (noizenet: the API)
    ("experiments",),
    ("report",),
    # training makes and measures takes as it goes (generation, analysis's metrics), so it sits
    # above both; it never draws a figure (test_training_draws_no_figures)
    ("train",),
    ("analysis",),
    ("generate",),
    ("run",),
    ("models",),
    ("codecs",),
    ("corpus",),
    ("synth",),
    ("audio",),
    ("config", "io", "errors", "sampling", "tensorfile", "progress", "locks", "limits"),
]
VERBS = 0
# Third-party modules slow to import (numpy alone takes longer than building the whole CLI
# parser), optional extras, and platform-only modules: imported where they are used.
HEAVY = {
    "torch", "librosa", "matplotlib", "numba", "scipy", "pandas", "safetensors", "soundfile",
    "numpy", "tqdm", "tensorboard", "fcntl", "msvcrt", "psutil", "starlette", "uvicorn", "PIL",
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = ("noizenet", *path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else "noizenet"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module}: in no layer of DESIGN.md; add it to LAYERS")


@cache
def imports(module: str) -> tuple[tuple[str, bool, int], ...]:
    """(imported module, at module top?, line) for every import of ``module``; imports under
    ``if TYPE_CHECKING:`` are left out (they never run)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, top, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                modules = [f"{base}.{a.name}" for a in child.names if f"{base}.{a.name}" in MODULES]
                # from noizenet import audio: the module audio; from noizenet.run import Run:
                # the package noizenet.run
                if len(modules) < len(child.names):
                    found.append((base, top, child.lineno))
                found.extend((m, top, child.lineno) for m in modules)
            else:
                inner = top and not isinstance(
                    child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
                )
                visit(child, inner)

    visit(ast.parse(path.read_text(encoding="utf-8")), True)
    return tuple(found)


def internal(module: str) -> list[tuple[str, bool, int]]:
    return [i for i in imports(module) if i[0] in MODULES]


def is_version(module: str, target: str, line: int) -> bool:
    """``from noizenet import __version__``: the package root is imported before any module."""
    if target != "noizenet":
        return False
    src = MODULES[module].read_text(encoding="utf-8").splitlines()[line - 1]
    return "import __version__" in src


@cache
def heavy(module: str) -> bool:
    """A third-party module in HEAVY, or one of ours that imports one at its top (directly or
    through other modules of ours)."""
    seen, todo = set(), [module]
    while todo:
        m = todo.pop()
        if m.split(".")[0] in HEAVY:
            return True
        if m in seen or m not in MODULES:
            continue
        seen.add(m)
        todo += [t for t, top, _ in imports(m) if top]
    return False


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer(module)


def test_imports_point_down():
    upward = [
        f"{m}:{line} imports {t} ({LAYERS[layer(t)][0]} is above {LAYERS[layer(m)][0]})"
        for m in MODULES
        for t, _, line in internal(m)
        if layer(t) < layer(m) and not is_version(m, t, line)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    """Also inside a package (train.trainer <-> train.distributed counts)."""
    graph = {
        m: sorted({t for t, _, line in internal(m) if t != m and not is_version(m, t, line)})
        for m in MODULES
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in graph[m]:
            if state.get(t) == 1:
                cycles.append([*stack[stack.index(t) :], t])
            elif t not in state:
                walk(t)
        stack.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            walk(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_imports_sit_at_module_top_unless_heavy():
    """A lazy import is for start-up time only: a heavy module, or a verb importing the layers
    below it (``noizenet --help`` and ``import noizenet`` load neither torch nor numpy)."""
    lazy = [
        f"{m}:{line} imports {t} inside a function"
        for m in MODULES
        for t, top, line in imports(m)
        if not top
        and not heavy(t)
        and not is_version(m, t, line)
        and not (layer(m) == VERBS and t.startswith("noizenet"))
    ]
    assert not lazy, "\n".join(lazy)


FIGURE_MODULES = ("noizenet.analysis.figures", "noizenet.report")


def test_training_draws_no_figures():
    """DESIGN.md: training writes weights, metrics, events and takes, never figures; the verb
    that trained draws them. No module of train reaches the figures, even through others."""
    reached = []
    for m in MODULES:
        if layer(m) != layer("noizenet.train"):
            continue
        seen, todo = set(), [m]
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            if t.startswith(FIGURE_MODULES):
                reached.append(f"{m} reaches {t}")
                break
            todo += [i for i, _, line in internal(t) if not is_version(t, i, line)]
    assert not reached, "\n".join(reached)


def test_the_checks_see_what_they_are_for(tmp_path, monkeypatch):
    """The rules catch an upward import, a cycle and a needless lazy import."""
    pkg = tmp_path / "noizenet"
    (pkg / "run").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "io.py").write_text("def f():\n    import json\n    from noizenet.run import x\n")
    (pkg / "run" / "__init__.py").write_text("from noizenet.run.a import x\n")
    (pkg / "run" / "a.py").write_text("from noizenet.run import y\nx = 1\n")
    monkeypatch.setattr(__import__(__name__), "SRC", pkg)
    modules = {module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    monkeypatch.setattr(__import__(__name__), "MODULES", modules)
    imports.cache_clear()
    heavy.cache_clear()
    try:
        for check in (test_imports_point_down, test_no_import_cycles):
            try:
                check()
            except AssertionError as exc:
                assert "noizenet.run" in str(exc)
            else:
                raise AssertionError(f"{check.__name__} missed it")
        try:
            test_imports_sit_at_module_top_unless_heavy()
        except AssertionError as exc:
            assert "noizenet.io:2 imports json" in str(exc)
        else:
            raise AssertionError("the lazy import was missed")
    finally:
        imports.cache_clear()
        heavy.cache_clear()
