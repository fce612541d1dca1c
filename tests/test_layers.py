"""Stage packages import only earlier stages (no cycles), in the order written in README's layout
section: core modules ← data ← llm ← retrieve ← evaluate ← labels ← annotate ← train ← experiments ← review ← cli.
Function-level (lazy) imports count too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "utilabel"
STAGES = ["core", "data", "llm", "retrieve", "evaluate", "labels", "annotate", "train", "experiments", "review", "cli"]


def _stage(parts: list[str]) -> str:
    return parts[0] if len(parts) > 1 and (ROOT / parts[0]).is_dir() else "core"


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


def test_review_reads_labels_through_labels_not_train():
    """The review page reaches label sources and the uncertain order through labels/, never train/."""
    assert not any("train" in imported_stages(p) for p in (ROOT / "review").rglob("*.py"))
    assert not any("experiments" in imported_stages(p) or "train" in imported_stages(p)
                   for p in (ROOT / "labels").rglob("*.py"))
