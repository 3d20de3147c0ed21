"""The house as the data flows: the env's face at the top, a wing per idea, imports that run one way.

The import graph is read from the source (every `import`, including those inside functions and under
`TYPE_CHECKING`: they tie modules together all the same), so these tests fail on the change that adds
a circle or an arrow running back up, not on some later import error.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "loong_env"
README = PACKAGE.parent / "README.md"
FACE_LIMIT = 12
BASE = {"loong_env.types", "loong_env.errors", "loong_env.bridge", "loong_env.settings"}
ENGINES = ("sandbox", "equivalence")  # the lowest floors: they import the base and themselves only
EXECUTORS = ("cli", "distributed")  # what sits above the features; no feature package imports them


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


@functools.cache
def import_graph(root: Path = PACKAGE) -> nx.DiGraph:
    """Module -> module it imports, for every import statement anywhere in a module of the package."""
    modules = _modules(root)
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                # `from pkg import sub` imports the submodule; `from mod import name` the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` where c is a name
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph.add_edge(name, target)
    return graph


def wing(module: str) -> str:
    """`loong_env.sandbox.pool` -> `sandbox`; a face module is its own wing."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_top_of_the_package_holds_only_the_envs_face():
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(top) <= FACE_LIMIT, f"{len(top)} modules at the top of loong_env/ (at most {FACE_LIMIT}): {top}"


def test_no_module_imports_in_a_circle():
    graph = import_graph()
    cycles = sorted(nx.simple_cycles(graph, length_bound=8), key=len)
    assert not cycles, "import circles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:10])


def test_feature_packages_never_import_the_commands_or_the_ray_executor():
    graph = import_graph()
    wrong = [
        (a, b)
        for a, b in graph.edges
        if wing(b) in EXECUTORS and wing(a) not in EXECUTORS and a != "loong_env.__main__"
    ]
    wrong += [(a, b) for a, b in graph.edges if wing(b) == "cli" and wing(a) == "distributed"]
    assert not wrong, f"imports that run back up to the commands or Ray: {wrong}"


@pytest.mark.parametrize("engine", ENGINES)
def test_the_engines_import_nothing_above_them(engine):
    graph = import_graph()
    above = [
        (a, b)
        for a, b in graph.edges
        if wing(a) == engine and wing(b) != engine and b not in BASE and b != "loong_env"
    ]
    assert not above, f"{engine}/ imports above its floor: {above}"


def test_a_runs_record_is_handed_its_facts_and_reads_no_feature():
    graph = import_graph()
    allowed = {"runs", *(m.split(".")[1] for m in BASE)}
    up = [(a, b) for a, b in graph.edges if wing(a) == "runs" and wing(b) not in allowed]
    assert not up, f"runs/ must be a leaf every run writes to: {up}"


def test_the_readme_layout_table_matches_the_folders():
    table = README.read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`loong_env/([a-z_]+)/`", table))
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert named == folders, f"README layout table: missing {folders - named}, stale {named - folders}"
    for path in re.findall(r"`(loong_env/[a-z_/]+\.py)`", table):
        assert (PACKAGE.parent / path).is_file(), f"README layout table names {path}, which does not exist"


def test_the_graph_reader_sees_imports_inside_functions_and_type_checking(tmp_path):
    pkg = tmp_path / "loong_env"
    (pkg / "wing").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "wing" / "__init__.py").write_text("")
    (pkg / "wing" / "a.py").write_text("def f():\n    from loong_env.wing import b\n")
    (pkg / "wing" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import f\n")
    graph = import_graph(pkg)
    assert list(nx.simple_cycles(graph)) and graph.has_edge("loong_env.wing.b", "loong_env.wing.a")
