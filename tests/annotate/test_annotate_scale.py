"""The streaming engine under load and faults: per-query fault isolation, the circuit breaker,
calls of many queries in flight, the group-committed call log, garbage replies and corrupt log lines
on resume, changed settings on a run folder, shards + merge, the Ray executor.

Control flow uses the scripted fake backend (a pure function of the request); the HTTP paths use
the stub server of ``benchmarks/stub_server.py`` through the real ``openai`` backend.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from annotate_scripted import corpus_and_groups, respond

from utilabel.annotate import AnnotateConfig, annotate
from utilabel.errors import ConfigError, LLMError
from utilabel.fileio import AppendLog
from utilabel.llm import get_backend
from utilabel.records import Candidate, CandidateGroup, Document


def fake(fn):
    return get_backend("fake", responses=fn)


def failing_for(*queries: int):
    """The scripted model, but every call of the given queries fails on the "server"."""

    def fn(request):
        if any(f"question number {q}?" in request.messages[-1]["content"] for q in queries):
            raise LLMError("gave up after 5 attempts: HTTP 500 from the server")
        return respond(request)

    return fn


def asks_about(request) -> int:
    return int(request.messages[-1]["content"].split("question number ", 1)[1].split("?", 1)[0])


def test_a_query_whose_calls_fail_on_the_server_is_recorded_and_the_run_goes_on(tmp_path):
    corpus, groups = corpus_and_groups()
    cfg = AnnotateConfig(method="utilsel")
    run = annotate(groups, corpus, fake(failing_for(2)), tmp_path / "run", cfg, progress=False)
    s = run.summary
    assert s["complete"] and s["queries_done"] == 6 and s["queries_labelled"] == 5
    assert s["queries_errored"] == 1 and s["queries_failed"] == 1 and run.failed_queries == ["q2"]
    assert list(s["query_errors"]) == ["q2"] and "HTTP 500" in s["query_errors"]["q2"]
    assert {j.query_id for j in run.judgments} == {"q0", "q1", "q3", "q4", "q5"}
    # a re-run asks the server only for the failed query, and ends with the labels of a run without faults
    again = fake(respond)
    s2 = annotate(groups, corpus, again, tmp_path / "run", cfg, progress=False).summary
    assert again.requests and {asks_about(r) for r in again.requests} == {2}
    assert s2["queries_errored"] == 0 and s2["queries_labelled"] == 6
    annotate(groups, corpus, fake(respond), tmp_path / "ref", cfg, progress=False)
    assert (tmp_path / "run" / "judgments.jsonl").read_bytes() == (tmp_path / "ref" / "judgments.jsonl").read_bytes()


def test_circuit_breaker_counts_consecutive_server_failures(tmp_path):
    corpus, groups = corpus_and_groups()
    cfg = AnnotateConfig(method="relsel")
    # every other query fails: never 2 failures in a row, so breaker=2 lets the run finish
    s = annotate(groups, corpus, fake(failing_for(1, 3, 5)), tmp_path / "alt", cfg, progress=False, breaker=2).summary
    assert s["complete"] and sorted(s["query_errors"]) == ["q1", "q3", "q5"]
    # a dead server: the run stops after 3 failed calls, not after the first, and not after all of them
    down = fake(failing_for(*range(6)))
    with pytest.raises(LLMError, match="stopped after 3 consecutive server failures .*re-run to continue"):
        annotate(groups, corpus, down, tmp_path / "down", cfg, progress=False, breaker=3)
    summary = json.loads((tmp_path / "down" / "summary.json").read_text())
    assert not summary["complete"] and summary["calls_failed"] == 3 and summary["queries_errored"] >= 3
    assert (tmp_path / "down" / "judgments.jsonl").read_text() == ""


def test_calls_of_many_queries_are_in_flight_together_up_to_max_concurrency(tmp_path):
    corpus, groups = corpus_and_groups(12)
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def slow(request):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return respond(request)

    cfg = AnnotateConfig(method="utilsel", votes=2)
    annotate(groups, corpus, fake(slow), tmp_path / "par", cfg, progress=False, max_concurrency=3, workers=6)
    assert state["max"] == 3
    annotate(groups, corpus, fake(respond), tmp_path / "seq", cfg, progress=False)
    assert (tmp_path / "par" / "judgments.jsonl").read_bytes() == (tmp_path / "seq" / "judgments.jsonl").read_bytes()
    assert (tmp_path / "par" / "groups.jsonl").read_bytes() == (tmp_path / "seq" / "groups.jsonl").read_bytes()


def test_judgments_are_written_once_per_run_not_after_every_query(tmp_path, monkeypatch):
    corpus, groups = corpus_and_groups()
    replaced = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append(os.path.basename(b)), real(a, b)))
    annotate(groups, corpus, fake(respond), tmp_path, AnnotateConfig(method="relsel"), progress=False)
    assert replaced.count("judgments.jsonl") == 1 and replaced.count("groups.jsonl") == 1
    assert not (tmp_path / ".judgments.spool").exists()


def test_append_log_group_commit(tmp_path, monkeypatch):
    syncs = []
    real = os.fsync

    def slow_fsync(fd):
        syncs.append(fd)
        time.sleep(0.01)
        real(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    log = AppendLog(tmp_path / "log.jsonl")
    with ThreadPoolExecutor(16) as pool:
        where = list(pool.map(lambda i: log.append({"i": i, "text": "é" * i}), range(200)))
    log.close()
    data = (tmp_path / "log.jsonl").read_bytes()
    assert sorted(r["i"] for r in AppendLog.read(tmp_path / "log.jsonl")) == list(range(200))
    assert all(json.loads(data[o:o + n])["i"] == i for i, (o, n) in enumerate(where))
    assert 1 <= len(syncs) < 200  # threads that wrote while another synced shared its next fsync


def three_docs():
    corpus = {f"d{i}": Document(f"d{i}", f"text {i}") for i in range(3)}
    return corpus, [CandidateGroup("q", "question?", tuple(Candidate(f"d{i}", i + 1, 1.0) for i in range(3)))]


def test_a_reply_that_failed_to_parse_is_asked_again_by_the_next_run(tmp_path):
    corpus, groups = three_docs()
    cfg = AnnotateConfig(method="relsel", shuffle=False, retries=0)
    first = annotate(groups, corpus, fake(lambda r: "§§ garbled §§"), tmp_path, cfg, progress=False)
    assert first.failed_queries == ["q"]
    good = fake(lambda r: "My selection:[[2]]")
    run = annotate(groups, corpus, good, tmp_path, cfg, progress=False)
    assert len(good.requests) == 1
    assert {j.doc_id: j.relevance for j in run.judgments} == {"d0": 0, "d1": 1, "d2": 0}
    log = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [r["output"] for r in log] == ["§§ garbled §§", "My selection:[[2]]"] and log[0]["key"] == log[1]["key"]


def test_a_corrupt_line_in_the_middle_of_the_call_log_is_skipped_and_its_call_made_again(tmp_path, caplog):
    corpus, groups = corpus_and_groups(3)
    cfg = AnnotateConfig(method="relsel")
    annotate(groups, corpus, fake(respond), tmp_path, cfg, progress=False)
    before = (tmp_path / "judgments.jsonl").read_bytes()
    calls = tmp_path / "calls.jsonl"
    lines = calls.read_text().splitlines(keepends=True)
    lines[1] = lines[1][: len(lines[1]) // 2] + "\n"  # torn in the middle of the file
    calls.write_text("".join(lines))
    again = fake(respond)
    with caplog.at_level(logging.WARNING):
        run = annotate(groups, corpus, again, tmp_path, cfg, progress=False)
    assert f"{calls}:2: corrupt call record skipped" in caplog.text
    assert len(again.requests) == 1 and run.summary["call_log_corrupt_lines"] == [2]
    assert (tmp_path / "judgments.jsonl").read_bytes() == before


def test_other_settings_on_an_existing_run_folder_are_refused_unless_overwrite(tmp_path):
    corpus, groups = corpus_and_groups(2)
    annotate(groups, corpus, fake(respond), tmp_path, AnnotateConfig(method="relsel"), progress=False)
    before = (tmp_path / "judgments.jsonl").read_bytes()
    with pytest.raises(ConfigError, match=r"holds a run with other settings \(method: 'relsel' → 'utilsel'.*--overwrite"):
        annotate(groups, corpus, fake(respond), tmp_path, AnnotateConfig(method="utilsel"), progress=False)
    assert (tmp_path / "judgments.jsonl").read_bytes() == before
    run = annotate(groups, corpus, fake(respond), tmp_path, AnnotateConfig(method="utilsel"), progress=False,
                   overwrite=True)
    assert {j.method for j in run.judgments} == {"utilsel"}
    assert run.summary["calls_cached"] == 2  # the relsel calls of the first run are reused


def test_shards_merge_to_the_unsharded_run(tmp_path):
    from utilabel.annotate.shards import merge_runs, parse_shard, shard_of

    corpus, groups = corpus_and_groups(12)
    cfg = AnnotateConfig(method="utilsel", votes=2)
    annotate(groups, corpus, fake(respond), tmp_path / "all", cfg, progress=False)
    assert sorted({shard_of(g.query_id, 3) for g in groups}) == [0, 1, 2]  # every shard has work
    dirs = [tmp_path / f"s{i}" for i in range(3)]
    for i, d in enumerate(dirs):
        s = annotate(groups, corpus, fake(respond), d, cfg, progress=False, shard=(i, 3)).summary
        assert s["queries"] == sum(shard_of(g.query_id, 3) == i for g in groups)
    merged = merge_runs(dirs[::-1], tmp_path / "merged")
    assert merged["queries"] == 12 and merged["complete"] and merged["queries_labelled"] == 12
    for name in ("judgments.jsonl", "groups.jsonl"):
        assert sorted((tmp_path / "merged" / name).read_bytes().splitlines()) == sorted(
            (tmp_path / "all" / name).read_bytes().splitlines())
    with pytest.raises(ConfigError, match=r"missing shard\(s\) 1/3 of 3"):
        merge_runs([dirs[0], dirs[2]], tmp_path / "m2")
    with pytest.raises(ConfigError, match="shard 0/3 given twice"):
        merge_runs([dirs[0], dirs[0], dirs[1]], tmp_path / "m3")
    other = tmp_path / "other"
    annotate(groups, corpus, fake(respond), other, AnnotateConfig(method="utilsel", seed=1), progress=False, shard=(1, 3))
    with pytest.raises(ConfigError, match=r"other settings .*seed: 0 → 1"):
        merge_runs([dirs[0], other, dirs[2]], tmp_path / "m4")
    with pytest.raises(ConfigError, match="is not a shard"):
        merge_runs([tmp_path / "all"], tmp_path / "m5")
    assert parse_shard("2/4") == (2, 4)
    with pytest.raises(ConfigError, match=r"--shard i/N needs 0 ≤ i < N, got '4/4'"):
        parse_shard("4/4")


def test_openai_backend_against_the_stub_with_faults_labels_every_query(tmp_path, llm_stub):
    corpus, groups = corpus_and_groups(8)
    cfg = AnnotateConfig(method="relsel")
    clean = llm_stub()
    with get_backend("openai", base_url=clean.url, concurrency=4) as b:
        annotate(groups, corpus, b, tmp_path / "clean", cfg, progress=False, max_concurrency=4)
    faulty = llm_stub(fault_rate=0.3, faults=("500", "429"))
    with get_backend("openai", base_url=faulty.url, concurrency=4, backoff_s=0.0) as b:
        run = annotate(groups, corpus, b, tmp_path / "faulty", cfg, progress=False, max_concurrency=4)
    assert run.summary["queries_labelled"] == 8 and faulty.stats()["faults"] > 0
    assert faulty.stats()["requests"] == 8 + faulty.stats()["faults"]  # each fault cost one retried request
    assert (tmp_path / "faulty" / "judgments.jsonl").read_bytes() == (tmp_path / "clean" / "judgments.jsonl").read_bytes()


def dies_once(marker, after: int):
    """The scripted model, but the process dies (as a killed Ray worker would) at its call ``after + 1``,
    once: ``marker`` remembers it happened; every call made is a line in ``marker.log``."""
    made = []

    def fn(request):
        made.append(1)
        with open(f"{marker}.log", "a") as fh:
            fh.write("call\n")
        if len(made) > after and not marker.exists():
            marker.touch()
            os._exit(1)
        return respond(request)

    return fn


@pytest.mark.slow  # starting a Ray cluster takes 10 s on an idle 2-core box, minutes (or a timeout) on a busy one
def test_ray_executor_on_a_local_cluster_equals_the_unsharded_run(tmp_path, llm_stub, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_agent_register_timeout_ms", "300000")  # more time for a slow agent start (busy box)
    import annotate_scripted

    from utilabel.annotate.distributed import annotate_ray

    corpus, groups = corpus_and_groups(12)
    cfg = AnnotateConfig(method="relsel", votes=2)
    stub = llm_stub()
    options = {"base_url": stub.url, "model": "stub", "concurrency": 4}
    with get_backend("openai", **options) as b:
        annotate(groups, corpus, b, tmp_path / "all", cfg, progress=False, max_concurrency=4)
    served = stub.stats()["answered"]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        merged = annotate_ray(groups, corpus, "openai", options, tmp_path / "ray", cfg, shards=3, max_concurrency=4)
        assert merged["queries_labelled"] == 12 and len(merged["shards"]) == 3
        assert stub.stats()["answered"] == 2 * served  # the shards made each call once
        assert sorted((tmp_path / "ray" / "judgments.jsonl").read_bytes().splitlines()) == sorted(
            (tmp_path / "all" / "judgments.jsonl").read_bytes().splitlines())
        # a worker killed after 3 logged calls: Ray retries its task, which resumes from the shard's call log
        ray.cloudpickle.register_pickle_by_value(annotate_scripted)
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        annotate(groups, corpus, fake(respond), tmp_path / "ref", cfg, progress=False)
        marker = tmp_path / "died"
        annotate_ray(groups, corpus, "fake", {"responses": dies_once(marker, 3)}, tmp_path / "killed", cfg, shards=2)
    finally:
        ray.shutdown()
    assert marker.exists()
    assert (tmp_path / "killed" / "judgments.jsonl").read_bytes() != b""
    assert sorted((tmp_path / "killed" / "judgments.jsonl").read_bytes().splitlines()) == sorted(
        (tmp_path / "ref" / "judgments.jsonl").read_bytes().splitlines())
    logs = [tmp_path / "killed" / "shards" / f"{i}-of-2" / "calls.jsonl" for i in range(2)]
    keys = [json.loads(x)["key"] for log in logs for x in log.read_text().splitlines()]
    n_calls = len((tmp_path / "ref" / "calls.jsonl").read_text().splitlines())
    assert len(keys) == len(set(keys)) == n_calls
    # the retried task replayed the 3 calls logged before the kill: only the call cut short was made twice
    assert len((tmp_path / "died.log").read_text().splitlines()) == n_calls + 1
