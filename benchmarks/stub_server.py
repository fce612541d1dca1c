"""An OpenAI-compatible stub LLM server: fixed latency, optional faults, request counts.

Reproduces the annotation scale numbers without a GPU (``bench_annotate_scale.py``) and serves as a
misbehaving server in tests. ``POST /v1/chat/completions`` answers after ``latency`` seconds with a
selection that is a pure function of the prompt: of the numbered passages ``[i] text`` in the last
message, those whose CRC-32 is divisible by 3 (else the one with the smallest CRC), so every
ordering of the same passages selects the same texts and a resumed run must reproduce the labels
of an uninterrupted one. Joint answer+selection prompts get ``Answer: stub.`` first; prompts without
passages get ``A stub answer.``.

``fault_rate`` of the requests (seeded) get a fault instead, cycling through ``faults``: ``500``,
``429`` (with ``Retry-After: 0``) or ``garbage`` (HTTP 200 whose text parses as nothing).
``GET /stats`` returns ``{"requests", "chat", "faults", "answered", "repeats"}``; ``repeats`` counts
requests answered normally whose exact body had been answered before (a call made twice).

HTTP/1.1 with keep-alive on raw asyncio streams, so the server costs little CPU next to the client
it measures. In-process: ``StubLLMServer(latency=0.05).start()`` (a background thread; ``.url``,
``.stats()``, ``.stop()``). Standalone: ``python benchmarks/stub_server.py --latency 0.05`` prints
``READY <base url>`` and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import sys
import threading
import zlib
from collections import Counter

PASSAGE = re.compile(r"^\[(\d+)\] (.*)$", re.M)


def stub_answer(messages: list[dict]) -> str:
    """The stub's reply to a chat request (see the module docstring)."""
    text = messages[-1]["content"]
    found = PASSAGE.findall(text)
    if not found:
        return "A stub answer."
    crc = {int(i): zlib.crc32(t.encode("utf-8")) for i, t in found}
    chosen = sorted(i for i, c in crc.items() if c % 3 == 0) or [min(crc, key=crc.get)]
    selection = "My selection:[" + ",".join(f"[{i}]" for i in chosen) + "]"
    return ("Answer: stub.\n" + selection) if "Answer: <your" in text else selection


def _chat_reply(text: str, model: str) -> dict:
    return {"id": "stub", "object": "chat.completion", "model": model or "stub",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}}


class StubLLMServer:
    """The stub server (see module docstring)."""

    def __init__(self, latency: float = 0.05, fault_rate: float = 0.0, faults: tuple[str, ...] = ("500", "429", "garbage"),
                 seed: int = 0, host: str = "127.0.0.1", port: int = 0):
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {fault_rate}")
        self.latency, self.fault_rate, self.faults = latency, fault_rate, tuple(faults)
        self.host, self.port = host, port
        self.counts: Counter = Counter()
        self._rng = random.Random(seed)
        self._answered: set[bytes] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stats(self) -> dict[str, int]:
        return {k: self.counts[k] for k in ("requests", "chat", "faults", "answered", "repeats")}

    async def _reply(self, method: str, path: str, body: bytes) -> tuple[int, dict, dict]:
        if method == "GET" and path == "/stats":
            return 200, self.stats(), {}
        if method != "POST" or not path.endswith("/chat/completions"):
            return 404, {"error": f"no route {method} {path}"}, {}
        self.counts["requests"] += 1
        self.counts["chat"] += 1
        request = json.loads(body)
        await asyncio.sleep(self.latency)
        if self.fault_rate and self._rng.random() < self.fault_rate:
            self.counts["faults"] += 1
            kind = self.faults[self.counts["faults"] % len(self.faults)]
            if kind == "garbage":
                return 200, _chat_reply("§§ garbled §§", request.get("model", "")), {}
            return int(kind), {"error": {"message": f"stub fault {kind}"}}, {"Retry-After": "0"} if kind == "429" else {}
        digest = hashlib.sha1(body).digest()
        self.counts["answered"] += 1
        if digest in self._answered:
            self.counts["repeats"] += 1
        self._answered.add(digest)
        return 200, _chat_reply(stub_answer(request["messages"]), request.get("model", "")), {}

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.add(asyncio.current_task())
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                status, payload, extra = await self._reply(method, path, body)
                data = json.dumps(payload).encode()
                out = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}", "Content-Type: application/json",
                       f"Content-Length: {len(data)}", *(f"{k}: {v}" for k, v in extra.items())]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.CancelledError, ConnectionError, ValueError):
            pass
        finally:
            self._tasks.discard(asyncio.current_task())
            writer.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> StubLLMServer:
        """Serve from a background thread; returns once the port is open."""
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="stub-llm-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    async def _shutdown(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()

    def __enter__(self) -> StubLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--latency", type=float, default=0.05, help="seconds before each answer (default 0.05)")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of requests answered with a fault")
    p.add_argument("--faults", default="500,429,garbage", help="fault kinds, cycled (500, 429, garbage)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = p.parse_args(argv)
    server = StubLLMServer(args.latency, args.fault_rate, tuple(args.faults.split(",")), args.seed, port=args.port)

    async def serve():
        await server._start()
        print(f"READY {server.url}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
