"""The review page in a real headless Chromium against a real ``utilabel review serve`` process:
keyboard-only labelling, kill and resume, XSS shown as text, the token when ``--host`` is given."""

from __future__ import annotations

import json

import httpx
from review_data import XSS

from utilabel.data.registry import load_dataset
from utilabel.data.trec import read_trec_qrels
from utilabel.review import build_queue


def on_screen(page) -> tuple[str, list[str], list[int]]:
    """The query id, passage doc ids and the LLM's suggestions of the page shown."""
    qid = page.locator("input[name=query_id]").get_attribute("value")
    docs = page.locator(".passage .docid").all_inner_texts()
    sugg = [int(x) for x in page.locator(".passage").evaluate_all("ps => ps.map(p => p.dataset.suggestion)")]
    return qid, docs, sugg


def press(page, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


def submit(page) -> None:
    with page.expect_navigation():
        page.keyboard.press("Enter")


def serve_args(data, run, out, *extra):
    return [run, "--dataset", data, "--split", "train", "--out", out, "--annotator", "alice", *extra]


def test_label_five_queries_by_keyboard_only(review_run, serve, page, tmp_path):
    data, run = review_run
    out = tmp_path / "human.qrels"
    server = serve(*serve_args(data, run, out, "--budget", "5"))
    assert "review 5 of 6 queries (0 labelled) as alice" in server.banner
    page.goto(server.url)
    assert page.url.endswith("/q/0") and page.inner_text("#progress") == "0 / 5 labelled"
    assert page.locator(".origin").all_inner_texts() == ["LLM suggestion"] * 3
    expected = {}
    scripts = [
        (["0", "1", "1"], lambda s: [0, 1, 1]),                          # each digit moves to the next passage
        (["1", "u", "0", "j", "0", "k", "k", "1"], lambda s: [1, s[1], 0]),  # undo, move down and up
        (["ArrowDown", "1", "ArrowUp", "ArrowUp", "0"], lambda s: [0, 1, s[2]]),
        ([], lambda s: s),                                              # Enter alone accepts the suggestions
        (["1", "1", "1"], lambda s: [1, 1, 1]),
    ]
    for n, (keys, result) in enumerate(scripts):
        qid, docs, sugg = on_screen(page)
        press(page, *keys)
        if keys:
            assert "your label" in page.locator(".origin").all_inner_texts()
        submit(page)
        expected[qid] = dict(zip(docs, result(sugg)))
        assert page.inner_text("#progress") == f"{n + 1} / 5 labelled"
    assert page.inner_text("#done") == "All 5 queries labelled."
    assert read_trec_qrels(out) == expected and len(expected) == 5
    queue = [item.query_id for item in build_queue([run], load_dataset(data), "train", "5").items]
    assert list(expected) == queue  # labelled in queue order
    assert page.dialogs == []


def test_kill_mid_queue_then_restart_keeps_labels_and_resumes(review_run, serve, page, tmp_path):
    data, run = review_run
    out = tmp_path / "human.qrels"
    server = serve(*serve_args(data, run, out, "--budget", "5"))
    page.goto(server.url)
    done = {}
    for _ in range(2):
        qid, docs, _ = on_screen(page)
        press(page, "1", "0", "1")
        submit(page)
        done[qid] = dict(zip(docs, [1, 0, 1]))
    on_screen_qid = on_screen(page)[0]
    press(page, "0", "0")  # on screen, not submitted
    server.kill()
    log = [json.loads(x) for x in (tmp_path / "human.qrels.alice.log.jsonl").read_text().splitlines()]
    assert [r["query_id"] for r in log] == list(done) and read_trec_qrels(out) == done

    again = serve(*serve_args(data, run, out, "--budget", "5"))
    assert "(2 labelled)" in again.banner
    page.goto(again.url)
    assert page.url.endswith("/q/2") and on_screen(page)[0] == on_screen_qid  # resumes at the query on screen
    assert page.inner_text("#progress") == "2 / 5 labelled"
    page.goto(again.url.rstrip("/") + "/q/0")
    assert "you labelled this query" in page.inner_text("#status")
    checked = page.locator(".passage input:checked").evaluate_all("xs => xs.map(x => x.value)")
    assert checked == ["1", "0", "1"]  # the stored labels, not the suggestions
    page.goto(again.url)
    for _ in range(3):
        submit(page)
    assert page.inner_text("#done") == "All 5 queries labelled." and len(read_trec_qrels(out)) == 5


def test_script_in_a_passage_or_query_shows_as_text(review_run, serve, page, tmp_path):
    data, run = review_run
    out = tmp_path / "human.qrels"
    queue = [item.query_id for item in build_queue([run], load_dataset(data), "train", "6").items]
    server = serve(*serve_args(data, run, out, "--budget", "6"))
    page.goto(f"{server.url}q/{queue.index('q5')}")
    assert page.inner_text("h1") == "what does <b>bold</b> & <script>alert(1)</script> do?"
    xss = page.locator(".passage").first
    assert XSS in xss.inner_text() and "<i>XSS</i> title" in xss.locator("h2").inner_text()
    assert page.locator("main img, main script, h1 b, h2 i").count() == 0
    assert page.evaluate("window.__xss") is None and page.dialogs == []
    submit(page)  # the page still works: the labels are stored
    assert "q5" in read_trec_qrels(out) and page.dialogs == []


def test_host_requires_the_token(review_run, serve, page, tmp_path):
    data, run = review_run
    out = tmp_path / "human.qrels"
    server = serve(*serve_args(data, run, out, "--budget", "5", "--host", "127.0.0.1"))
    base, token = server.url.split("?token=")
    assert len(token) >= 20
    assert httpx.get(base).status_code == 403
    assert httpx.get(base + "q/0?token=wrong").status_code == 403
    refused = httpx.post(base + "q/0", data={"query_id": "q4", "g0": "1", "g1": "1", "g2": "1"})
    assert refused.status_code == 403 and "needs its token" in refused.text
    page.goto(base)
    assert "needs its token" in page.inner_text("body")
    assert out.read_text() == "" and (tmp_path / "human.qrels.alice.log.jsonl").read_text() == ""
    page.goto(server.url)  # with the token: a cookie, then the page without the token in the address
    assert "token" not in page.url and page.url.endswith("/q/0")
    submit(page)
    assert len(read_trec_qrels(out)) == 1
    assert httpx.get(base + "q/1", headers={"Authorization": f"Bearer {token}"}).status_code == 200
