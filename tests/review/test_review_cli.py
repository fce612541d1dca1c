"""``utilabel review serve``: one-line errors before it starts; POST + CSRF, Host and grade checks."""

from __future__ import annotations

import re
import socket

import httpx
import pytest
from review_data import make_review_run

from utilabel.cli.main import main
from utilabel.data.trec import read_trec_qrels


@pytest.mark.parametrize("case, message", [
    ("no-run", r"run folder \S+/nowhere not found"),
    ("not-a-run", r"has no judgments.jsonl \(not an annotation run\?\)"),
    ("dataset", r"unknown dataset 'no-such-set'"),
    ("budget", r"--budget must be a fraction in \(0, 1\]"),
    ("annotator", r"--annotator must be 1-64 letters"),
    ("port", r"cannot listen on 127.0.0.1:\d+"),
])
def test_bad_input_is_one_line_before_the_server_starts(review_run, tmp_path, capsys, case, message):
    data, run = review_run
    args = {"runs": [str(run)], "--dataset": str(data), "--out": str(tmp_path / "h.qrels"), "--budget": "0.5",
            "--annotator": "alice", "--port": "0"}
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    if case == "no-run":
        args["runs"] = [str(tmp_path / "nowhere")]
    elif case == "not-a-run":
        args["runs"] = [str(data)]
    elif case == "dataset":
        args["--dataset"] = "no-such-set"
    elif case == "budget":
        args["--budget"] = "7.5"
    elif case == "annotator":
        args["--annotator"] = "../etc"
    else:
        args["--port"] = str(busy.getsockname()[1])
    argv = ["review", "serve", *args.pop("runs")] + [x for kv in args.items() for x in kv]
    rc = main(argv)
    busy.close()
    captured = capsys.readouterr()
    assert rc != 0 and captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("utilabel: error: ") and re.search(message, err[0]), err
    assert not (tmp_path / "h.qrels").exists()  # nothing written


def test_post_needs_csrf_and_valid_grades_and_local_host(review_run, serve, tmp_path):
    data, run = review_run
    out = tmp_path / "h.qrels"
    server = serve(run, "--dataset", data, "--out", out, "--budget", "5", "--annotator", "alice")
    page = httpx.get(server.url + "q/0").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    qid = re.search(r'name="query_id" value="([^"]+)"', page).group(1)
    form = {"csrf": csrf, "query_id": qid, "g0": "1", "g1": "0", "g2": "1"}
    assert httpx.post(server.url + "q/0", data={**form, "csrf": "forged"}).status_code == 403
    assert httpx.post(server.url + "q/0", data={**form, "g2": "2"}).status_code == 400  # binary dataset: 0/1
    assert httpx.post(server.url + "q/0", data={**form, "g2": "²"}).status_code == 400
    assert httpx.post(server.url + "q/0", data={k: v for k, v in form.items() if k != "g1"}).status_code == 400
    assert httpx.post(server.url + "q/0", data={**form, "query_id": "q1"}).status_code == 409
    assert httpx.get(server.url + "q/0", headers={"Host": "evil.example"}).status_code == 400  # DNS rebinding
    assert httpx.get(server.url + "q/0?g0=1").status_code == 200  # a GET changes nothing
    assert out.read_text() == "" and (tmp_path / "h.qrels.alice.log.jsonl").read_text() == ""
    ok = httpx.post(server.url + "q/0", data=form)
    assert ok.status_code == 303 and ok.headers["location"] == "/q/1"
    assert list(read_trec_qrels(out)) == [qid]
    assert httpx.get(server.url + "q/9").status_code == 404


def test_graded_dataset_takes_grades_0_to_3(tmp_path, serve):
    data, run = make_review_run(tmp_path, grades={"q1": 3, "q2": 2})
    out = tmp_path / "h.qrels"
    server = serve(run, "--dataset", data, "--out", out, "--budget", "1", "--annotator", "alice")
    page = httpx.get(server.url + "q/0").text
    assert page.count('type="radio" name="g0"') == 4  # 0, 1, 2, 3
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = httpx.post(server.url + "q/0", data={"csrf": csrf, "query_id": "q4", "g0": "3", "g1": "2", "g2": "0"})
    assert r.status_code == 303 and read_trec_qrels(out) == {"q4": {"d10": 3, "d11": 2, "d12": 0}}
