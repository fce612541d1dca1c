"""LLM backend speed: embedded llama.cpp (``llamacpp``) vs in-process transformers (``transformers``) on the
same GGUF and the same prompts — a SciFact question with one SciFact passage, the shape of a pointwise
annotation call. Writes its section of BENCHMARKS.md.

    UTILABEL_SOURCE_MIRROR=../shared/data python benchmarks/bench_llm_backends.py [--model smollm2-135m]
        [--threads 1] [--skip-transformers]

Measured per backend (median of ``--repeat`` runs, wall clock in this process):
* prompt tok/s — prompt tokens / time of a request generating one token (prompt cache off);
* generation tok/s — 64 / (time to generate 65 tokens − time to generate 1), EOS ignored;
* pointwise ms/passage — ``token_logprobs(["yes", "no"])`` over 10 passages for one question;
* load s — model load until the first request can run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section  # noqa: E402

from utilabel.data.registry import load_dataset  # noqa: E402
from utilabel.llm import ChatRequest, get_backend  # noqa: E402

GEN = 64


def prompts(n: int = 10) -> list[list[dict]]:
    ds = load_dataset("scifact")
    qid, rels = next(iter(sorted(ds.qrels("test").items())))
    query = ds.queries[qid].text
    doc_ids = sorted(ds.corpus)[:n]
    out = []
    for did in doc_ids:
        doc = ds.corpus[did]
        passage = f"{doc.title}. {doc.text}"[:1500]
        out.append([{"role": "user", "content": f"Question: {query}\n\nPassage: {passage}\n\n"
                                                f"Does the passage help answer the question? Answer yes or no."}])
    return out


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_llamacpp(model: str, threads: int, msgs: list[list[dict]], repeat: int) -> dict:
    t = time.perf_counter()
    llm = get_backend("llamacpp", model=model, n_parallel=1, n_threads=threads, n_ctx=2048,
                      extra_body={"cache_prompt": False, "ignore_eos": True})
    load = time.perf_counter() - t
    first = ChatRequest(tuple(msgs[0]), max_tokens=1)
    n_prompt = llm.chat(first).prompt_tokens
    t1 = median_time(lambda: llm.chat(first), repeat)
    tn = median_time(lambda: llm.chat(ChatRequest(tuple(msgs[0]), max_tokens=GEN + 1)), repeat)
    llm.extra_body = {}  # scoring: prompt cache on, as in real runs
    llm.token_logprobs(msgs[0])  # warm
    tp = median_time(lambda: llm.token_logprobs_many(msgs), max(1, repeat // 2)) / len(msgs)
    llm.close()
    return {"load": load, "prompt_tokens": n_prompt, "prompt_tps": n_prompt / t1, "gen_tps": GEN / (tn - t1),
            "point_ms": 1000 * tp}


def bench_transformers(model: str, threads: int, msgs: list[list[dict]], repeat: int) -> dict:
    import torch

    t = time.perf_counter()
    llm = get_backend("transformers", model=model, dtype="bfloat16", n_threads=threads)
    load = time.perf_counter() - t
    ids = torch.tensor([llm._prompt_ids(msgs[0])])

    def generate(n):
        with torch.inference_mode():
            llm.hf_model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                                  do_sample=False, temperature=None, top_p=None, top_k=None,
                                  pad_token_id=llm.tokenizer.eos_token_id)

    generate(1)  # warm
    t1 = median_time(lambda: generate(1), repeat)
    tn = median_time(lambda: generate(GEN + 1), repeat)
    tp = median_time(lambda: llm.token_logprobs_many(msgs), max(1, repeat // 2)) / len(msgs)
    return {"load": load, "prompt_tokens": ids.shape[1], "prompt_tps": ids.shape[1] / t1,
            "gen_tps": GEN / (tn - t1), "point_ms": 1000 * tp}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-transformers", action="store_true")
    args = ap.parse_args()
    msgs = prompts()
    load_before = os.getloadavg()[0]
    rows = {"llamacpp": bench_llamacpp(args.model, args.threads, msgs, args.repeat)}
    if not args.skip_transformers:
        rows["transformers"] = bench_transformers(args.model, args.threads, msgs, args.repeat)
    load_after = os.getloadavg()[0]
    lines = [
        "## LLM backends: llama.cpp server" + ("" if args.skip_transformers else " vs transformers on the same GGUF"),
        "",
        f"Model `{args.model}`, {args.threads} thread(s), prompt = one SciFact question + one passage "
        f"({rows['llamacpp']['prompt_tokens']} tokens with the chat template); median of {args.repeat}. "
        f"Machine: {machine()}; 1-min load average {load_before:.1f} → {load_after:.1f} (shared box: "
        "other jobs ran at the same time, so absolute numbers are noisy"
        + ("" if args.skip_transformers else "; the ratio is the claim") + ").",
        "",
        "| backend | load s | prompt tok/s | generation tok/s | pointwise ms/passage (yes/no log-probs) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(f"| `{name}` | {r['load']:.1f} | {r['prompt_tps']:.0f} | {r['gen_tps']:.1f} | "
                     f"{r['point_ms']:.0f} |")
    if "transformers" in rows:
        a, b = rows["transformers"], rows["llamacpp"]
        lines += ["", f"transformers / llama.cpp: prompt {a['prompt_tps'] / b['prompt_tps']:.2f}×, generation "
                      f"{a['gen_tps'] / b['gen_tps']:.2f}×, pointwise time {a['point_ms'] / b['point_ms']:.2f}×, "
                      f"load {a['load'] / b['load']:.0f}×."]
    flags = f"--model {args.model} --threads {args.threads} --repeat {args.repeat}" + (
        " --skip-transformers" if args.skip_transformers else "")
    lines += ["", f"Reproduce: `python benchmarks/bench_llm_backends.py {flags}`."]
    update_section(f"llm-backends-{args.model}", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
