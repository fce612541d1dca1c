"""Fixtures for the LLM tests: a real llama.cpp server with SmolLM2-135M, and a scripted HTTP stub.

The real server (xllamacpp, 127.0.0.1, free port) is started once per session and stopped after.
SmolLM2-135M ignores instructions, so tests on it check mechanics (format constraints, log-prob
arithmetic, ordering, recovery), never answer quality.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(scope="session")
def smol_server(start_smol_server):
    server = start_smol_server(n_ctx=1024, n_parallel=2, n_threads=1)  # two 512-token slots
    yield server
    server.stop()


@pytest.fixture()
def smol(smol_server):
    """An ``openai`` backend talking to the session's real llama.cpp server."""
    from utilabel.llm import get_backend

    backend = get_backend("openai", base_url=smol_server.base_url + "/v1", model="smollm2-135m", concurrency=2)
    yield backend
    backend.close()


class StubServer:
    """A tiny OpenAI-like HTTP server in a thread; ``script(n, path, body)`` → (status, payload, headers)."""

    def __init__(self, script: Callable[[int, str, dict], tuple[int, dict, dict]]):
        self.script = script
        self.calls: list[tuple[str, dict, dict]] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub._lock:
                    n = len(stub.calls)
                    stub.calls.append((self.path, body, dict(self.headers)))
                status, payload, headers = stub.script(n, self.path, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_payload(text: str, prompt_tokens: int = 11, completion_tokens: int = 3) -> dict:
    return {"id": "x", "object": "chat.completion", "model": "stub",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


@pytest.fixture()
def stub_server():
    servers = []

    def make(script):
        s = StubServer(script)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.fixture()
def payload():
    """The :func:`chat_payload` builder (fixtures are how test modules here share helpers)."""
    return chat_payload
