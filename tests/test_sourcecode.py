"""Source-code rules checked as tests (uvloop's test_sourcecode.py idea).

The SIP core is sans-IO: nothing under ``pyvoip_fast/sip/`` may import asyncio, socket, time, threading (or
other I/O/clock modules), so every timer path stays testable without sleeping.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIP_DIR = ROOT / "pyvoip_fast" / "sip"
FORBIDDEN = {"asyncio", "socket", "time", "threading", "selectors", "select", "trio", "concurrent", "datetime"}
SIP_FILES = sorted(SIP_DIR.glob("*.py"))


def _imported_modules(path: Path) -> set:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.add("__import__")
    return names


def test_sip_package_has_the_expected_modules() -> None:
    names = {p.stem for p in SIP_FILES}
    assert {"__init__", "message", "uri", "events", "transaction", "dialog", "endpoint"} <= names


@pytest.mark.parametrize("path", SIP_FILES, ids=lambda p: p.name)
def test_sip_core_is_sans_io(path: Path) -> None:
    bad = _imported_modules(path) & (FORBIDDEN | {"__import__"})
    assert not bad, f"{path.name} imports {sorted(bad)}: the SIP core must stay sans-IO"


def test_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom time import monotonic\nimport asyncio.tasks\n")
    assert {"time", "asyncio"} <= _imported_modules(sample)


def test_sdp_lives_in_the_sans_io_sip_package() -> None:
    assert (SIP_DIR / "sdp.py") in SIP_FILES


def _lint_imports() -> "subprocess.CompletedProcess[str]":
    import shutil
    import subprocess
    import sys

    from helpers import skip_or_fail

    exe = Path(sys.executable).parent / "lint-imports"
    found = str(exe) if exe.exists() else shutil.which("lint-imports")
    if found is None:
        skip_or_fail("import-linter not installed (it is in the test extra)")
    return subprocess.run([str(found), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_layers_only_import_downwards() -> None:
    """The import-linter contracts in pyproject.toml: the layer order and the sans-IO cores."""
    out = _lint_imports()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 2 kept, 0 broken." in out.stdout, out.stdout


def test_every_layer_says_what_it_owns_and_may_import() -> None:
    for layer in ("codecs", "rtp", "sip", "net", "audio", "media", "app"):
        init = ROOT / "pyvoip_fast" / layer / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "May import" in doc, f"{init} must say what it may import"


def test_no_room_too_big() -> None:
    """A module past ~800 lines or a class past ~400 is asking to be split along the data path (ext/ aside)."""
    big = []
    for path in sorted((ROOT / "pyvoip_fast").rglob("*.py")):
        src = path.read_text(encoding="utf-8")
        if src.count("\n") > 800:
            big.append(f"{path.relative_to(ROOT)}: {src.count(chr(10))} lines")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None and node.end_lineno - node.lineno > 400:
                big.append(f"{path.relative_to(ROOT)}: class {node.name} {node.end_lineno - node.lineno} lines")
    assert not big, big


def test_package_type_checks_strictly() -> None:
    """``mypy --strict`` over the package (settings in pyproject.toml), stubs of the compiled modules included."""
    import os
    import subprocess
    import sys

    from helpers import skip_or_fail

    try:
        import mypy  # noqa: F401
    except ImportError:
        skip_or_fail("mypy not installed (it is in the test extra)")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--cache-dir", os.devnull],
                         cwd=root, capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stdout + out.stderr


def _cycles(edges: dict) -> list:
    """Strongly connected components of two or more nodes (Tarjan, iterative): the import cycles of ``edges``."""
    index: dict = {}
    low: dict = {}
    on_stack: set = set()
    stack: list = []
    cycles = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_cycle_finder_finds_a_planted_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(edges) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    """No module imports itself back through others (grimp builds the graph import-linter checks)."""
    try:
        import grimp
    except ImportError:
        from helpers import skip_or_fail

        skip_or_fail("grimp not installed (it comes with import-linter, in the test extra)")
    graph = grimp.build_graph("pyvoip_fast")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) & graph.modules for m in graph.modules}
    assert _cycles(edges) == []
