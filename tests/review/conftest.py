"""Fixtures of the review tests: a tiny BEIR folder with its annotation run (one passage is an XSS
attempt), the ``utilabel review serve`` process, and a real headless Chromium (Debian's package,
driven by Playwright; the browser tests skip, saying why, when it is missing)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from review_data import make_review_run

import utilabel

CHROMIUM = os.environ.get("UTILABEL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def review_run(tmp_path):
    return make_review_run(tmp_path)


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    banner: str

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def serve():
    """``serve(*args)``: ``utilabel review serve ARGS --port 0`` as a process; returns when it prints its URL."""
    started: list[Server] = []
    env = {**os.environ, "PYTHONPATH": str(Path(utilabel.__file__).parents[1])}

    def start(*args: str) -> Server:
        proc = subprocess.Popen([sys.executable, "-m", "utilabel.cli.main", "review", "serve", *map(str, args),
                                 "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("open "):
                server = Server(proc, line.split()[1], "".join(lines))
                started.append(server)
                return server
        proc.wait(timeout=30)
        raise RuntimeError(f"review serve exited {proc.returncode}: {proc.stderr.read()}")

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def browser_context_factory(tmp_path_factory):
    """``new()``: a fresh persistent Chromium context (own user-data-dir) with one page."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium); "
                    "set UTILABEL_CHROMIUM to another executable")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (pip install playwright)")
    pw = sync_api.sync_playwright().start()
    contexts = []

    def new():
        ctx = pw.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("chromium-profile")),
                                                    executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        contexts.append(ctx)
        return ctx

    yield new
    for ctx in contexts:
        with contextlib.suppress(Exception):  # already closed by its test
            ctx.close()
    pw.stop()


@pytest.fixture
def page(browser_context_factory):
    ctx = browser_context_factory()
    page = ctx.pages[0] if ctx.pages else ctx.new_page()
    page.set_default_timeout(30_000)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    yield page
    ctx.close()
