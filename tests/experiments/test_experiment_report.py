"""The committed reports regenerate from their committed results (``utilabel experiment report``).

``write_report`` reads ``results.jsonl``/``events.jsonl`` (committed) and, from the grid's output folder,
the judgments snapshots (rebuilt here from the committed judgments, as the runner takes them) and the
trained models: ``models.jsonl`` (archived with the results since issue 20) or the models' ``DONE.json``
markers, which are not committed. These two grids predate ``models.jsonl``, so the model count and the
training minutes of their summary line cannot be rebuilt and that one line is compared without its two
numbers; every other byte must be identical. A grid run now archives ``models.jsonl`` and rebuilds whole.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from utilabel.experiments.config import ExperimentConfig
from utilabel.experiments.grid_data import GridData
from utilabel.experiments.report import write_report
from utilabel.experiments.results import RESULT_FILES, restore_results

REPO = Path(__file__).resolve().parents[2]
#: the parts of the summary that come from the uncommitted models/*/DONE.json
_FROM_MODELS = [(re.compile(r"; [0-9.]+ min training, "), "; N min training, "),
                (re.compile(r"^- \d+ trained models, ", re.M), "- N trained models, ")]


def _masked(text: str) -> str:
    for pattern, repl in _FROM_MODELS:
        text = pattern.sub(repl, text)
    return text


@pytest.mark.parametrize("name", [pytest.param("evidence-v2", marks=pytest.mark.slow), "label-rule-dev"])  # ~25 s of plots
def test_committed_report_regenerates_byte_identical(name, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    committed = REPO / "docs" / "results" / name
    monkeypatch.chdir(tmp_path)  # the report names its folder as given: docs/results/<name>
    archive = Path("docs/results") / name
    archive.mkdir(parents=True)
    for f in ("config.yaml", *RESULT_FILES):
        if (committed / f).exists():  # these grids predate models.jsonl
            shutil.copyfile(committed / f, archive / f)
    config = ExperimentConfig.from_yaml(archive / "config.yaml")
    config.out = str(tmp_path / "out")
    assert restore_results(config.out, archive)  # what `experiment run --archive` starts from
    data = GridData(config)
    for src in config.sources:
        if src.path:
            Path(src.path).parent.mkdir(parents=True, exist_ok=True)
            if not Path(src.path).exists():
                shutil.copyfile(REPO / src.path, src.path)
            data.snapshot(src.path)
    report = write_report(config, path=archive / "report.md")
    expected = (committed / "report.md").read_text(encoding="utf-8")
    got = report.read_text(encoding="utf-8")
    assert _masked(got) == _masked(expected)
    assert len(re.findall(r"min training|trained models", got)) == 2  # the masks touched only those two numbers


def test_machines_are_recorded_and_cross_machine_comparisons_flagged(tmp_path):
    """Each result names the machine that computed it; a comparison whose rows come from different
    machines is marked † (float kernels differ across CPUs), one from a single machine is not."""
    import json

    from utilabel.experiments.report import row_machines
    from utilabel.experiments.results import machine

    here = machine()
    assert here.count(" | ") == 2 and here.endswith(f"torch {__import__('torch').__version__}")
    config = ExperimentConfig.from_dict({
        "name": "m", "out": str(tmp_path / "out"), "datasets": [{"name": "scifact"}],
        "comparisons": [{"a": "x", "b": "y"}, {"a": "x", "b": "z"}]})
    per_query = {f"q{i}": 0.1 * (i % 7) for i in range(30)}
    records = [{"key": row, "row": row, "seed": 0, "dataset": "scifact", "kind": "retrieval", "time": 1.0,
                "metrics": {"nDCG@10": 0.5}, "n_queries": 30, "n_docs": 100, "per_query": per_query, **extra}
               for row, extra in (("x", {"machine": here}), ("y", {"machine": here}), ("z", {}))]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert row_machines(records, "x", "scifact") == {here} and row_machines(records, "z", "scifact") == {"not recorded"}
    text = write_report(config, path=tmp_path / "report.md").read_text()
    xy = next(line for line in text.splitlines() if line.startswith("| x | y |"))
    xz = next(line for line in text.splitlines() if line.startswith("| x | z |"))
    assert not xy.endswith("† |") and xz.endswith("† |")
    assert f"- Retrieval results by machine: {here}: 2; not recorded: 1." in text
    assert "† The two rows' results were computed on different machines" in text
