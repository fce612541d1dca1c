"""Control flow with the scripted fake backend: shuffling, retries, failures, voting, windows,
resume, pointwise / answer-likelihood math, training groups, agreement, dry run.

The fake backend stands in for the LLM only here; real-model runs are in test_annotate_llamacpp.py.
"""

from __future__ import annotations

import json
import math

import pytest
from annotate_scripted import corpus_and_groups, passages, respond, sel

from utilabel.annotate import AnnotateConfig, annotate, estimate, groups_from_judgments, read_judgments
from utilabel.annotate.engine import permutation
from utilabel.annotate.methods.utilrank import rank_weight, sliding_windows
from utilabel.errors import ConfigError, UnknownNameError
from utilabel.llm import get_backend
from utilabel.records import Candidate, CandidateGroup, Document, Judgment


def fake(fn, **kw):
    return get_backend("fake", responses=fn, **kw)


def by_doc(judgments, field):
    return {j.doc_id: getattr(j, field) for j in judgments}


def test_shuffled_prompts_map_back_to_the_right_docs(tmp_path):
    corpus, groups = corpus_and_groups()
    backend = fake(respond)
    run = annotate(groups, corpus, backend, tmp_path, AnnotateConfig(method="utilsel"), progress=False)
    rel, util = by_doc(run.judgments, "relevance"), by_doc(run.judgments, "utility")
    for did, doc in corpus.items():
        assert util[did] == (1.0 if "useful" in doc.text else 0.0), did
        assert rel[did] == (1 if ("useful" in doc.text or "relevant" in doc.text) else 0), did
    # the prompts really were shuffled: some relsel prompt does not list docs in first-stage order
    shown = [list(passages(r).values()) for r in backend.requests if "relevant to the question" in r.messages[-1]["content"]]
    assert any([t.split()[1] for t in s] != [str(d) for d in range(8)] for s in shown)


def test_permutation_is_seeded_and_differs_per_vote():
    a = permutation(0, "q1", 0, 10)
    assert a == permutation(0, "q1", 0, 10) and sorted(a) == list(range(10))
    assert a != permutation(0, "q1", 1, 10) or a != permutation(1, "q1", 0, 10)


def three_docs():
    corpus = {f"d{i}": Document(f"d{i}", f"text {i}") for i in range(3)}
    groups = [CandidateGroup("q", "question?", tuple(Candidate(f"d{i}", i + 1, 1.0) for i in range(3)))]
    return corpus, groups


def test_parse_failures_are_retried_with_new_seed_and_counted(tmp_path):
    corpus, groups = three_docs()
    script = {0: "I cannot decide.", 1: "My selection:[[7]]", 2: "My selection:[[2]]"}
    backend = fake(lambda r: script[r.seed])
    run = annotate(groups, corpus, backend, tmp_path, AnnotateConfig(method="relsel", shuffle=False, retries=2),
                   progress=False)
    assert [r.seed for r in backend.requests] == [0, 1, 2]
    assert [r.temperature for r in backend.requests] == [0.0, 0.7, 0.7]
    assert by_doc(run.judgments, "relevance") == {"d0": 0, "d1": 1, "d2": 0}
    f = run.summary["failures"]["relsel"]
    assert f["no_selection"] == 1 and f["out_of_range"] == 1 and f["duplicate"] == 0
    assert run.summary["failed_steps"] == {}


def test_failures_after_all_retries_never_become_labels(tmp_path):
    corpus, groups = three_docs()
    backend = fake(lambda r: "My selection:[[1],[1]]")
    run = annotate(groups, corpus, backend, tmp_path, AnnotateConfig(method="utilsel", retries=1), progress=False)
    assert run.judgments == [] and run.failed_queries == ["q"]
    assert run.summary["failures"]["relsel"]["duplicate"] == 2 and run.summary["failed_steps"] == {"relsel": 1}
    assert (tmp_path / "judgments.jsonl").read_text() == "" and (tmp_path / "groups.jsonl").read_text() == ""


def test_failed_utility_step_keeps_relevance_but_no_utility(tmp_path):
    corpus, groups = three_docs()
    backend = fake(lambda r: "Answer: x\nMy selection:[]" if "Answer: <your" in r.messages[-1]["content"]
                   else "My selection:[[1],[3]]")
    run = annotate(groups, corpus, backend, tmp_path, AnnotateConfig(method="utilsel", shuffle=False, retries=0),
                   progress=False)
    assert by_doc(run.judgments, "relevance") == {"d0": 1, "d1": 0, "d2": 1}
    assert set(by_doc(run.judgments, "utility").values()) == {None}
    assert run.summary["failures"]["utilsel"]["empty"] == 1
    assert groups_from_judgments(run.judgments, groups) == []


def test_utility_step_sees_only_relevance_selected_passages(tmp_path):
    corpus, groups = corpus_and_groups(1)
    backend = fake(respond)
    annotate(groups, corpus, backend, tmp_path, AnnotateConfig(method="utilsel", style="paper"), progress=False)
    pseudo = [r for r in backend.requests if "faithful" in r.messages[0]["content"]]
    assert len(pseudo) == 1
    text = pseudo[0].messages[-1]["content"]
    # docs 1,2,5,6 are useful/relevant (d % 4 in {1, 2}); the others never reach the answer step
    assert all(f"passage {d} " in text for d in (1, 2, 5, 6)) and not any(f"passage {d} " in text for d in (0, 3, 4, 7))


def test_voting_gives_fraction_of_runs_selecting_each_passage(tmp_path):
    corpus = {f"d{i}": Document(f"d{i}", f"text {i}") for i in range(4)}
    groups = [CandidateGroup("q", "question?", tuple(Candidate(f"d{i}", i + 1, 1.0) for i in range(4)))]
    # a maximally position-biased model: always picks the first passage shown
    backend = fake(lambda r: "Answer: a\nMy selection:[[1]]")
    run = annotate(groups, corpus, backend, tmp_path, AnnotateConfig(method="direct-utilsel", votes=5), progress=False)
    firsts = [permutation(0, "q", v, 4)[0] for v in range(5)]
    expected = {f"d{i}": firsts.count(i) / 5 for i in range(4)}
    assert by_doc(run.judgments, "utility") == pytest.approx(expected)
    assert sum(expected.values()) == pytest.approx(1.0)  # exactly one pick per vote


def test_sliding_windows_hand_checked():
    # n=10, window 4, stride 2: ends 10, 8, 6, 4 → starts 6, 4, 2, 0
    assert sliding_windows(10, 4, 2) == [(6, 10), (4, 8), (2, 6), (0, 4)]
    # stride 3: ends 10, 7, 4 → starts 6, 3, 0
    assert sliding_windows(10, 4, 3) == [(6, 10), (3, 7), (0, 4)]
    assert sliding_windows(3, 4, 2) == [(0, 3)]
    assert sliding_windows(5, 4, 3) == [(1, 5), (0, 2)]
    # graded weights, top_m = 3: 3/3, 2/3, 1/3, then 0
    assert [rank_weight(r, 3) for r in (1, 2, 3, 4)] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])


def test_utilrank_sliding_window_bubbles_the_best_to_the_top(tmp_path):
    corpus, groups = corpus_and_groups(2)
    backend = fake(respond)
    cfg = AnnotateConfig(method="utilrank", window=4, stride=2, top_m=3)
    run = annotate(groups, corpus, backend, tmp_path, cfg, progress=False)
    rank_calls = [r for r in backend.requests if "Rank" in r.messages[-1]["content"]]
    assert len(rank_calls) == 2 * 3  # 8 candidates, w=4, s=2 → windows (4,8), (2,6), (0,4) per query
    for q in ("q0", "q1"):
        js = [j for j in run.judgments if j.query_id == q]
        score = {j.doc_id: int(corpus[j.doc_id].text.rsplit("score=", 1)[1]) for j in js}
        by_rank = sorted(js, key=lambda j: j.rank)
        # a back-to-front pass with overlap window-stride = 2 places the true top-2 exactly
        true_top = sorted(score, key=lambda d: (-score[d], d))[:2]
        assert [j.doc_id for j in by_rank[:2]] == true_top
        assert [j.utility for j in by_rank[:4]] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
        assert by_rank[0].score == 1.0 and by_rank[1].score == 0.5


def test_resume_replays_logged_calls_and_gives_identical_files(tmp_path):
    corpus, groups = corpus_and_groups()
    cfg = AnnotateConfig(method="utilsel", votes=2)
    first = fake(respond)
    s1 = annotate(groups, corpus, first, tmp_path, cfg, progress=False).summary
    # identical calls within a run (two votes can show the same relevance-selected passages in the
    # same order) are made once and replayed from the store
    assert s1["calls_new"] == len(first.requests) <= s1["calls_new"] + s1["calls_cached"]
    before = (tmp_path / "judgments.jsonl").read_bytes()
    again = fake(respond)
    run = annotate(groups, corpus, again, tmp_path, cfg, progress=False)
    assert again.requests == [] and run.summary["calls_new"] == 0 and run.summary["calls_cached"] == s1["calls_new"] + s1["calls_cached"]
    assert (tmp_path / "judgments.jsonl").read_bytes() == before


def test_crash_mid_run_then_resume_equals_uninterrupted(tmp_path):
    corpus, groups = corpus_and_groups()
    cfg = AnnotateConfig(method="utilsel", votes=2)
    annotate(groups, corpus, fake(respond), tmp_path / "full", cfg, progress=False)
    calls = {"n": 0}

    def crashing(r):
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("server died")
        return respond(r)

    with pytest.raises(RuntimeError):
        annotate(groups, corpus, fake(crashing), tmp_path / "part", cfg, progress=False)
    logged = len((tmp_path / "part" / "calls.jsonl").read_text().splitlines())
    assert logged == 6
    resumed = fake(respond)
    annotate(groups, corpus, resumed, tmp_path / "part", cfg, progress=False)
    assert (tmp_path / "part" / "judgments.jsonl").read_bytes() == (tmp_path / "full" / "judgments.jsonl").read_bytes()
    assert len((tmp_path / "part" / "calls.jsonl").read_text().splitlines()) == len(
        (tmp_path / "full" / "calls.jsonl").read_text().splitlines())


def test_a_log_of_another_backend_is_refused_and_an_unnamed_one_replayed(tmp_path):
    # call keys name the model, not the engine: llama.cpp and transformers give one model other
    # log-probabilities, so a resume with another backend must not mix their numbers
    corpus, groups = corpus_and_groups()
    cfg = AnnotateConfig(method="utilsel")
    s1 = annotate(groups, corpus, fake(respond), tmp_path, cfg, progress=False).summary
    log = tmp_path / "calls.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["engine"] for r in records} == {"fake"}

    def rewrite(engine):
        with open(log, "w") as fh:
            for r in records:
                r.pop("engine", None)
                fh.write(json.dumps({**r, **({"engine": engine} if engine else {})}) + "\n")

    rewrite("llamacpp")
    with pytest.raises(ConfigError, match=r"calls made with the llamacpp backend; this run uses fake"):
        annotate(groups, corpus, fake(respond), tmp_path, cfg, progress=False, overwrite=True)
    rewrite(None)  # a log written before records named their backend: replayed as before
    again = fake(respond)
    run = annotate(groups, corpus, again, tmp_path, cfg, progress=False, overwrite=True)
    assert again.requests == [] and run.summary["calls_cached"] == s1["calls_new"] + s1["calls_cached"]


def test_call_log_records_prompt_step_model_usage(tmp_path):
    corpus, groups = three_docs()
    annotate(groups, corpus, fake(lambda r: "My selection:[[1]]"), tmp_path, AnnotateConfig(method="relsel"),
             progress=False)
    rec = json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[0])
    assert rec["prompt_id"] == "relsel-compact@v3" and rec["step"] == "relsel" and rec["model"] == "fake"
    assert rec["method"] == "relsel" and rec["query_id"] == "q" and rec["output"] == "My selection:[[1]]"
    assert rec["prompt_tokens"] > 0 and rec["options"]["seed"] == 0 and len(rec["key"]) == 64


def test_pointwise_soft_labels_and_shared_prefix(tmp_path):
    corpus, groups = corpus_and_groups(1)

    seen = []

    def lp(messages, cont):
        seen.append(messages[-1]["content"])
        useful = " is useful " in messages[-1]["content"].split("Passage:")[1]
        p_yes = 0.8 if useful else 0.2
        return math.log(p_yes if cont.lower() == "yes" else 1 - p_yes)

    backend = fake(respond, logprobs=lp)
    run = annotate(groups, corpus, backend, tmp_path, AnnotateConfig(method="pointwise"), progress=False)
    for j in run.judgments:
        useful = "useful" in corpus[j.doc_id].text
        # useful: P(yes) = P("yes") + P("Yes") = 0.8 + 0.8, P(no) = 0.2 + 0.2:
        # P(yes)/(P(yes)+P(no)) = 1.6/2.0 = 0.8; log-odds = log(1.6/0.4) = log 4
        assert j.utility == pytest.approx(0.8 if useful else 0.2)
        assert j.score == pytest.approx(math.log(4) if useful else -math.log(4))
    log = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    scored = [r for r in log if r["step"] == "pointwise"]
    assert len(scored) == 8 and set(scored[0]["output"]) == {"yes", "Yes", "no", "No"}
    # passage first, then the query (task label), the pseudo-answer and the task's yes/no question
    tails = {t.split("\n\n", 1)[1] for t in seen}
    assert len(tails) == 1 and "Reference answer: The scripted answer." in (tail := tails.pop())
    assert tail.startswith("Question: ") and "Does this passage contain the answer to the question?" in tail
    assert len({t.split("\n\n", 1)[0] for t in seen}) == 8 and all(t.startswith("Passage: ") for t in seen)
    assert run.judgments[0].prompt_id.endswith("+task:qa@v1")


def test_pointwise_signals_fused(tmp_path):
    """yesno + graded + first_stage on two passages, hand-computed (fusion module docstring)."""
    corpus = {"a": Document("a", "alpha"), "b": Document("b", "beta")}
    groups = [CandidateGroup("q", "Is it alpha?", (Candidate("a", 1, 3.0), Candidate("b", 2, 1.0)))]

    def lp(messages, cont):
        text = messages[-1]["content"]
        assert "\n\nClaim: Is it alpha?\n\n" in text
        a = "alpha" in text.split("\n\n")[0]
        if cont in ("0", "1", "2", "3"):  # graded: a → all mass on 3, b → on 1
            return 0.0 if cont == ("3" if a else "1") else -1e9
        p_yes = 0.75 if a else 0.5
        return math.log(p_yes if cont.lower() == "yes" else 1 - p_yes)

    cfg = AnnotateConfig(method="pointwise", answer_source="none", task="claim",
                         signals=("yesno", "graded", "first_stage"), weights={"graded": 0.5})
    run = annotate(groups, corpus, fake(respond, logprobs=lp), tmp_path, cfg, progress=False)
    # yesno log-odds: a log(1.5/0.5) = log 3, b 0; graded 3 vs 1 → z = +1/-1 (weight 0.5);
    # first_stage 3 vs 1 → z = +1/-1 (weight 1): a = log 3 + 1.5, b = -1.5
    assert by_doc(run.judgments, "score") == pytest.approx({"a": math.log(3) + 1.5, "b": -1.5})
    assert by_doc(run.judgments, "utility")["b"] == pytest.approx(1 / (1 + math.exp(1.5)))
    log = [json.loads(x) for x in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert sorted({r["step"] for r in log}) == ["graded", "pointwise"]
    assert run.judgments[0].prompt_id == "pointwise_noanswer-compact@v2+pointwise_graded-compact@v1+task:claim@v1"


def test_answer_likelihood_gain_over_closed_book(tmp_path):
    corpus = {"a": Document("a", "Paris is the capital of France."), "b": Document("b", "Bananas are yellow.")}
    groups = [CandidateGroup("q", "Capital of France?", (Candidate("a", 1, 2.0), Candidate("b", 2, 1.0)))]

    def lp(messages, cont):
        text = messages[-1]["content"]
        return -5.0 if "Passage" not in text else (-1.0 if "Paris" in text else -6.0)

    backend = fake(respond, logprobs=lp)
    cfg = AnnotateConfig(method="answer-likelihood")
    run = annotate(groups, corpus, backend, tmp_path, cfg, answers={"q": ("Paris",)}, progress=False)
    # gains: a = -1 - (-5) = 4, b = -6 - (-5) = -1
    assert by_doc(run.judgments, "score") == {"a": 4.0, "b": -1.0}
    assert by_doc(run.judgments, "utility") == {"a": 1.0, "b": 0.0} and by_doc(run.judgments, "rank") == {"a": 1, "b": 2}
    with pytest.raises(ConfigError, match="needs gold answers"):
        annotate(groups, corpus, backend, tmp_path / "x", cfg, progress=False)


def test_groups_from_judgments():
    groups = [CandidateGroup("q1", "Q1", tuple(Candidate(d, r, 0.0) for r, d in enumerate("abcd", 1))),
              CandidateGroup("q2", "Q2", (Candidate("e", 1, 0.0),))]
    js = [Judgment("q1", "a", "m", utility=0.0), Judgment("q1", "b", "m", utility=1.0),
          Judgment("q1", "c", "m", utility=0.6), Judgment("q1", "d", "m", utility=None),
          Judgment("q2", "e", "m", utility=0.0)]
    (g,) = groups_from_judgments(js, groups)  # q2 has no positive: skipped
    assert g.query_id == "q1" and g.positives == {"b": 1.0, "c": 1.0} and g.negatives == ["a"]
    assert g.teacher == {"a": 0.0, "b": 1.0, "c": 0.6}  # method "m": teacher score = utility, raw
    (g,) = groups_from_judgments(js, groups, "threshold:0.7", weights="soft")
    assert g.positives == {"b": 1.0} and g.negatives == ["a", "c"]
    (g,) = groups_from_judgments(js, groups, "top1")
    assert g.positives == {"b": 1.0} and g.negatives == ["a", "c"]
    with pytest.raises(ConfigError, match="label rule"):
        groups_from_judgments(js, groups, "stars")


def test_dry_run_counts_calls_per_method():
    corpus, groups = corpus_and_groups(2)
    assert estimate(groups, corpus, AnnotateConfig(method="utilsel")).calls == 2 * 2
    assert estimate(groups, corpus, AnnotateConfig(method="utilsel", style="paper")).calls == 2 * 3
    assert estimate(groups, corpus, AnnotateConfig(method="relsel", votes=3)).calls == 2 * 3
    # utilrank: relsel + pseudo-answer + 3 windows (8 docs, w=4, s=2 → (4,8),(2,6),(0,4))
    assert estimate(groups, corpus, AnnotateConfig(method="utilrank", window=4, stride=2)).calls == 2 * 5
    # pointwise: relsel + pseudo-answer + one scored call per passage (and signal); votes do not apply
    assert estimate(groups, corpus, AnnotateConfig(method="pointwise", votes=3)).calls == 2 * (2 + 8)
    assert estimate(groups, corpus, AnnotateConfig(method="pointwise", answer_source="none",
                                                   signals=("yesno", "ql"))).calls == 2 * (8 + 8)
    est = estimate(groups, corpus, AnnotateConfig(method="utilsel"))
    assert est.prompt_tokens > 0 and set(est.by_step) == {"relsel", "utilsel"}


def test_config_and_name_errors():
    with pytest.raises(UnknownNameError, match="valid: answer-likelihood, direct-utilsel"):
        AnnotateConfig(method="magic") and estimate([], {}, AnnotateConfig(method="magic"))
    with pytest.raises(ConfigError, match="stride must be in 1..window-1"):
        AnnotateConfig(window=4, stride=4)
    with pytest.raises(ConfigError, match="votes must be in 1..50"):
        AnnotateConfig(votes=0)
    with pytest.raises(ConfigError, match="joint answer"):
        AnnotateConfig(style="paper", joint=True)


def test_unknown_candidate_doc_is_an_error(tmp_path):
    corpus, groups = three_docs()
    del corpus["d1"]
    with pytest.raises(ConfigError, match="candidate doc 'd1' is not in the corpus"):
        annotate(groups, corpus, fake(respond), tmp_path, progress=False)


def test_read_judgments_roundtrip(tmp_path):
    corpus, groups = corpus_and_groups(1)
    run = annotate(groups, corpus, fake(respond), tmp_path, AnnotateConfig(method="utilsel"), progress=False)
    assert read_judgments(tmp_path / "judgments.jsonl") == run.judgments
    assert sel([1, 2]) == "My selection:[[1],[2]]"
