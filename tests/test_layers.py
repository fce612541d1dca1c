"""Stage packages import only earlier stages, in the order written in docs/index.md's layout section:
core modules ← data ← llm ← retrieve ← evaluate ← labels ← annotate ← generate ← train ← experiments ← review ← cli;
and no two modules import each other, directly or round a loop. Function-level (lazy) imports count
too: a lazy import may defer a heavy dependency, never hide a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "utilabel"
STAGES = ["core", "data", "llm", "retrieve", "evaluate", "labels", "annotate", "generate", "train", "experiments", "review", "cli"]


def _stage(parts: list[str]) -> str:
    return parts[0] if len(parts) > 1 and (ROOT / parts[0]).is_dir() else "core"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imported_modules(path: Path) -> set[str]:
    """The utilabel modules ``path`` imports anywhere (``from pkg import sub`` names the submodule
    ``pkg.sub`` when it is one, else the package)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("utilabel")}
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("utilabel.")):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module or "").split(".")).strip(".")
            out |= {f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names}
    return {m for m in out if m in MODULES and m != name}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def imported_stages(path: Path) -> set[str]:
    """Stages imported anywhere in ``path`` (absolute ``utilabel.x`` or relative imports)."""
    package = list(path.relative_to(ROOT).parts[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            target = package[: len(package) - node.level + 1] + (node.module or "").split(".")
        elif (node.module or "").startswith("utilabel."):
            target = node.module.split(".")[1:]
        else:
            continue
        target = [t for t in target if t]
        if target:
            out.add(_stage(target + ["x"]))
    return out


def test_stages_import_only_earlier_stages():
    bad = []
    for path in sorted(ROOT.rglob("*.py")):
        stage = _stage(list(path.relative_to(ROOT).parts))
        later = {s for s in imported_stages(path) if STAGES.index(s) > STAGES.index(stage)}
        bad += [f"{path.relative_to(ROOT)} ({stage}) imports {s}" for s in sorted(later)]
    assert not bad, "\n".join(bad)
    assert imported_stages(ROOT / "retrieve" / "dense.py") == {"core", "retrieve"}  # the parser sees imports


def test_no_module_imports_itself_round_a_loop():
    graph = {m: imported_modules(p) for m, p in MODULES.items()}
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_sees_loops_and_lazy_imports():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    # lazy imports count, and "from . import x" names the submodule x
    assert "utilabel.data.adapters" in imported_modules(ROOT / "data" / "registry.py")


def test_review_reads_labels_through_labels_not_train():
    """The review page reaches label sources and the uncertain order through labels/, never train/."""
    assert not any("train" in imported_stages(p) for p in (ROOT / "review").rglob("*.py"))
    assert not any("experiments" in imported_stages(p) or "train" in imported_stages(p)
                   for p in (ROOT / "labels").rglob("*.py"))
