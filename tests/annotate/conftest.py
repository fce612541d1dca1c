"""Fixtures for the annotation tests: the OpenAI-compatible stub server of ``benchmarks/stub_server.py``
(fixed latency, optional faults, request counts), started in a thread on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture()
def llm_stub():
    """``start(latency=0.0, fault_rate=0.0, faults=("500", "429", "garbage"))`` → a running stub server."""
    from stub_server import StubLLMServer

    servers = []

    def start(latency: float = 0.0, fault_rate: float = 0.0, faults: tuple[str, ...] = ("500", "429", "garbage")):
        servers.append(StubLLMServer(latency, fault_rate, faults).start())
        return servers[-1]

    yield start
    for s in servers:
        s.stop()
