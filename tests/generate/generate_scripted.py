"""The scripted corpus and LLM of the generate tests: eight one-topic passages (plus one too short to be a
source) and a reply that is a pure function of the request (two on-topic queries, a near-duplicate, a
too-short one and an off-topic one)."""

from __future__ import annotations

from pathlib import Path

from utilabel.data import beir
from utilabel.records import Document

TOPICS = ["volcano lava eruption magma", "penguin antarctic colony ice", "violin orchestra concerto bow",
          "quantum photon entanglement qubit", "wheat harvest grain farmer", "glacier melting climate warming",
          "chess opening gambit queen", "bacteria antibiotic resistance gene"]


def passage(i: int) -> Document:
    words = TOPICS[i].split()
    text = " ".join(f"The {w} study number {i} reports {w} results." for w in words)
    return Document(f"d{i}", text * (1 + i % 3), title=f"Report {i}")


def write_corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    beir.write_corpus(folder / "corpus.jsonl", [passage(i) for i in range(len(TOPICS))]
                      + [Document("tiny", "too short")])
    beir.write_queries(folder / "queries.jsonl", [])
    return folder


def topic_of(request) -> int:
    text = request.messages[-1]["content"].rsplit("Passage: ", 1)[1]
    return next(i for i, t in enumerate(TOPICS) if t.split()[0] in text)


def respond(request) -> str:
    """Two on-topic queries, a near-duplicate of the first, a too-short one and an off-topic one."""
    w = TOPICS[topic_of(request)].split()
    return (f"Here are the questions:\n1. What did the {w[0]} {w[1]} study report?\n"
            f"2. Question: How is {w[2]} related to {w[3]}?\n3. What did the {w[0]} {w[1]} study report then?\n"
            f"4. {w[0]}?\n5. Who composed the famous symphony number nine")


