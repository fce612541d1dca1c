"""``utilabel annotate`` at scale from the command line, on real SciFact queries against the stub
server: server failures (exit 7, one line, a re-run retries only those), ``--max-retries`` and
``--request-timeout`` reaching the server, changed settings on ``--out``, ``--shard`` + ``annotate merge``."""

from __future__ import annotations

import pytest

from utilabel.cli.main import main


def annotate_args(out, *extra):
    return ["annotate", "--dataset", "scifact", "--split", "train", "--method", "relsel", "--limit", "4", "--k", "3",
            "--backend", "openai", "--no-progress", "--out", str(out), *extra]


def last_error(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_server_failures_exit_7_and_a_rerun_retries_only_those(mirror, tmp_path, capsys, llm_stub):
    down = llm_stub(fault_rate=1.0, faults=("500",))
    rc = main(annotate_args(tmp_path, "--base-url", down.url, "--max-retries", "1", "--circuit-breaker", "0"))
    err = last_error(capsys)
    assert rc == 7 and err.startswith("utilabel: error: 4 of 4 queries failed on the server (first: ")
    assert "HTTP 500" in err and err.endswith("re-run the same command to retry only those")
    assert down.stats()["requests"] == 4 * 2  # one request per query, tried twice (--max-retries 1)
    up = llm_stub()
    assert main(annotate_args(tmp_path, "--base-url", up.url)) == 0
    assert up.stats()["requests"] == 4 and "4/4 queries labelled" in capsys.readouterr().out


def test_circuit_breaker_and_request_timeout_from_the_cli(mirror, tmp_path, capsys, llm_stub):
    stalled = llm_stub(latency=5.0)
    rc = main(annotate_args(tmp_path, "--base-url", stalled.url, "--request-timeout", "0.2", "--max-retries", "0",
                            "--max-concurrency", "1", "--circuit-breaker", "2"))
    err = last_error(capsys)
    assert rc == 6 and err.startswith("utilabel: error: stopped after 2 consecutive server failures (last: gave up")
    assert "ReadTimeout" in err and stalled.stats()["requests"] == 2


def test_another_method_on_the_same_out_is_refused(mirror, tmp_path, capsys, llm_stub):
    up = llm_stub()
    assert main(annotate_args(tmp_path, "--base-url", up.url)) == 0
    capsys.readouterr()
    args = annotate_args(tmp_path, "--base-url", up.url)
    args[args.index("relsel")] = "utilsel"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds a run with other settings (method: 'relsel' → 'utilsel'" in err
    assert "--overwrite" in err
    assert main(args + ["--overwrite"]) == 0


def test_shards_then_merge_equal_the_unsharded_run(mirror, tmp_path, capsys, llm_stub):
    up = llm_stub()
    assert main(annotate_args(tmp_path / "all", "--base-url", up.url, "--limit", "8")) == 0
    for i in range(2):
        assert main(annotate_args(tmp_path / f"s{i}", "--base-url", up.url, "--limit", "8", "--shard", f"{i}/2")) == 0
    assert main(["annotate", "merge", str(tmp_path / "s1"), str(tmp_path / "s0"), "--out", str(tmp_path / "m")]) == 0
    assert "8/8 queries labelled" in capsys.readouterr().out
    for name in ("judgments.jsonl", "groups.jsonl"):
        assert sorted((tmp_path / "m" / name).read_bytes().splitlines()) == sorted(
            (tmp_path / "all" / name).read_bytes().splitlines())
    assert main(["annotate", "merge", str(tmp_path / "s0"), "--out", str(tmp_path / "m2")]) == 2
    assert last_error(capsys) == "utilabel: error: missing shard(s) 1/2 of 2"


@pytest.mark.parametrize("shard", ["2/2", "a/b", "1"])
def test_bad_shard_is_one_line(mirror, tmp_path, capsys, shard):
    assert main(annotate_args(tmp_path, "--shard", shard)) == 2
    assert last_error(capsys).startswith("utilabel: error: --shard")
