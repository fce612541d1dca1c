"""One place decides an annotation run's defaults: :meth:`AnnotateConfig.resolve` — the CLI, the library
entry point :func:`annotate_dataset` and the demo resolve the same config for the same backend and dataset."""

from __future__ import annotations

import argparse
import json

import pytest

from utilabel.annotate.config import LOCAL_DEFAULTS, POINTWISE_RULE, AnnotateConfig
from utilabel.annotate.dataset import AnnotationJob, annotate_dataset
from utilabel.errors import ConfigError
from utilabel.llm import get_backend


@pytest.fixture(scope="module")
def scifact(mirror):
    from utilabel.data.registry import load_dataset

    return load_dataset("scifact")


def _cli_config(argv, dataset):
    """The config ``utilabel annotate ARGV`` runs with: its real flags, its own config building."""
    from utilabel.cli.annotate import COMMANDS, _config

    parser = argparse.ArgumentParser()
    COMMANDS[("annotate",)][0](parser)
    return _config(parser.parse_args(["--dataset", "scifact", "--out", "x", *argv]), dataset)


def test_cli_library_and_demo_resolve_the_same_config(scifact):
    # The old demo built AnnotateConfig(method="pointwise", label_rule="threshold:0.5", answer_source="none", ...)
    # itself: task "qa", signals ("yesno",), rule threshold:0.5 — where the CLI used claim, yesno+first_stage, top1.
    from utilabel.experiments.demo import DEMO_ANNOTATION_SIZES, DemoConfig, annotation_config

    sizes = [x for k, v in DEMO_ANNOTATION_SIZES.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    cli = _cli_config(sizes, scifact)
    library = AnnotateConfig.resolve("llamacpp", scifact, **DEMO_ANNOTATION_SIZES)
    job = AnnotationJob.for_dataset(scifact, "llamacpp", candidates=[], config=DEMO_ANNOTATION_SIZES).config
    demo = annotation_config(DemoConfig(), scifact)
    assert cli == library == job == demo
    assert (demo.method, demo.task, demo.signals, demo.label_rule, demo.max_passage_words, demo.retries) == (
        "pointwise", "claim", ("yesno", "first_stage"), "top1", 60, 1)


def test_a_library_caller_gets_the_datasets_task(scifact, tmp_path):
    from annotate_scripted import respond

    backend = get_backend("fake", responses=respond)
    run = annotate_dataset(scifact, backend, tmp_path / "run", k=3, limit=2, progress=False)
    assert run.summary["config"]["task"] == "claim" and run.summary["method"] == "utilsel"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["task"] == "claim"
    assert any("Claim" in m["content"] for m in backend.requests[0].messages)
    assert AnnotateConfig.resolve("openai", scifact, task="qa").task == "qa"  # a task given wins
    assert AnnotateConfig.resolve("openai").task == "qa"  # no dataset, no task: qa


def test_defaults_by_backend_and_method():
    local = AnnotateConfig.resolve("llamacpp")
    assert (local.method, local.signals, local.weights, local.label_rule, local.max_passage_words) == (
        LOCAL_DEFAULTS["method"], LOCAL_DEFAULTS["signals"], LOCAL_DEFAULTS["weights"], "top1", 100)
    assert AnnotateConfig.resolve("openai") == AnnotateConfig()  # a server gets the dataclass defaults
    server_pointwise = AnnotateConfig.resolve("openai", method="pointwise")
    assert (server_pointwise.answer_source, server_pointwise.label_rule) == ("relsel", POINTWISE_RULE)
    listwise_local = AnnotateConfig.resolve("vllm", method="utilsel")
    assert (listwise_local.max_passage_words, listwise_local.label_rule) == (150, "threshold:0.5")
    assert AnnotateConfig.resolve("llamacpp", signals="yesno").weights == {}  # the defaults' weights go with their signals
    assert AnnotateConfig.resolve("llamacpp", weights={"first_stage": 1.0}).weights == {"first_stage": 1.0}
    assert AnnotateConfig.resolve("llamacpp", label_rule=None, method=None) == local  # None: not given


def test_unknown_option_is_one_line():
    with pytest.raises(ConfigError, match=r"^unknown annotation option\(s\) metod; valid: .*window$"):
        AnnotateConfig.resolve("openai", metod="relsel")


def test_annotate_without_config_resolves_for_the_backend(tmp_path):
    from annotate_scripted import corpus_and_groups, respond

    from utilabel.annotate import annotate

    corpus, groups = corpus_and_groups(2, 4)
    run = annotate(groups, corpus, get_backend("fake", responses=respond), tmp_path, progress=False)
    assert run.summary["config"] == AnnotateConfig.resolve("fake").to_dict()
