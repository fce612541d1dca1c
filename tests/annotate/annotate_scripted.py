"""A deterministic scripted LLM for annotation tests (a pure function of the request).

It reads the numbered passages out of the prompt and answers like a perfect annotator would if
"relevant" marks relevant passages and "useful" marks useful ones (useful implies relevant);
rankings order passages by the number after "score=". Being a function of the request (not of
call order), it gives the same answers to a resumed run as to an uninterrupted one. Used by the
SIGKILL resume test as ``python annotate_scripted.py OUT [--delay S]``.
"""

from __future__ import annotations

import re
import sys

PASSAGE = re.compile(r"^\[(\d+)\] (.*)$", re.M)


def passages(request) -> dict[int, str]:
    text = "\n".join(m["content"] for m in request.messages if m["role"] != "assistant")
    return {int(i): t for i, t in PASSAGE.findall(text)}


def sel(ids) -> str:
    return "My selection:[" + ",".join(f"[{i}]" for i in ids) + "]"


def respond(request) -> str:
    ps = passages(request)
    allt = "\n".join(m["content"] for m in request.messages)
    last = request.messages[-1]["content"]
    useful = [i for i, t in sorted(ps.items()) if "useful" in t]
    relevant = [i for i, t in sorted(ps.items()) if "relevant" in t or "useful" in t]
    if "Rank" in allt:
        def score(i):
            m = re.search(r"score=(\d+)", ps[i])
            return int(m.group(1)) if m else 0
        return " > ".join(f"[{i}]" for i in sorted(ps, key=lambda i: (-score(i), i)))
    if "Answer: <your answer>" in last:
        return "Answer: the scripted answer.\n" + sel(useful)
    if "utility" in last:
        return sel(useful)
    if "Answer" in last or "Response:" in last:
        return "The scripted answer."
    return sel(relevant)


def corpus_and_groups(n_queries: int = 6, n_docs: int = 8):
    from utilabel.records import Candidate, CandidateGroup, Document

    corpus, groups = {}, []
    for q in range(n_queries):
        cands = []
        for d in range(n_docs):
            did = f"q{q}d{d}"
            tag = "useful" if d % 4 == 1 else "relevant" if d % 4 == 2 else "other"
            corpus[did] = Document(did, f"passage {d} of query {q} is {tag} score={(d * 7 + q) % 10}")
            cands.append(Candidate(did, d + 1, float(n_docs - d)))
        groups.append(CandidateGroup(f"q{q}", f"question number {q}?", tuple(cands)))
    return corpus, groups


def main(argv: list[str]) -> int:
    import time

    from utilabel.annotate import AnnotateConfig, annotate
    from utilabel.llm import get_backend

    out = argv[0]
    delay = float(argv[argv.index("--delay") + 1]) if "--delay" in argv else 0.0
    method = argv[argv.index("--method") + 1] if "--method" in argv else "utilsel"

    def slow(request):
        time.sleep(delay)
        return respond(request)

    corpus, groups = corpus_and_groups()
    backend = get_backend("fake", responses=slow)
    annotate(groups, corpus, backend, out, AnnotateConfig(method=method, votes=2, window=4, stride=2),
             progress=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
