"""``llamacpp`` backend: the embedded default — llama.cpp's own OpenAI-compatible server, in-process.

:func:`start_local_server` loads a GGUF (a registered name or a path, see :mod:`utilabel.llm.models`)
into llama.cpp's C++ HTTP server through the ``xllamacpp`` bindings (prebuilt AVX2 wheels; no
compiler needed) and returns a :class:`LocalServer` with ``.base_url`` and ``.stop()``. It binds
127.0.0.1 and, with ``port=0``, a free port picked by the OS. :class:`LlamaCppBackend` starts one and
talks to it (or to several, ``n_servers``) with the ``openai`` backend's code (chat, concurrency, retries, guided output, scoring):
nothing is duplicated, and the same code serves a remote llama.cpp server.

Why xllamacpp and not llama-cpp-python: built from source with default flags, llama-cpp-python dies
with SIGILL on this CPU at the first matrix multiply; xllamacpp's wheels run and ship the real
server (continuous batching, parallel slots, prompt cache, GBNF/JSON-schema constrained output).

Options: ``n_ctx`` (context per parallel slot, tokens), ``n_parallel`` (slots decoded together),
``n_threads`` (default: half the usable cores, see :func:`default_threads`), ``n_batch``,
``cache_reuse`` (llama.cpp ``--cache-reuse``: reuse cached chunks of at least this many tokens after
a shift; 0 = off), ``cache_ram_mib`` (host RAM for
the prompt cache across slots), ``port``, ``verbosity`` (llama.cpp log level, 0 = errors only),
``isolated`` (run the server in a child process; ``stop()`` kills it — see :class:`LocalServer`).
Generation requests ask for ``cache_prompt``, so a shared prefix (instructions, question) is evaluated
once per slot; scoring requests do not (log-probabilities must not depend on the cache state), and
each server scores one request at a time. Scoring therefore uses more cores through more servers: the
backend starts :func:`default_servers` of them (2 single-thread servers on a 2-core machine) and sends
each scoring to the least busy one, so every log-probability is the one a lone request gets.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import ConfigError, LLMError
from ..base import register_backend
from ..models import MODELS, TEST_MODEL, resolve_model
from .openai_compat import OpenAICompatBackend

if TYPE_CHECKING:
    import subprocess

log = logging.getLogger(__name__)

_LIVE: weakref.WeakSet = weakref.WeakSet()
_START_LOCK = threading.Lock()


@dataclass(frozen=True)
class LocalServerOptions:
    """Options of the embedded llama.cpp server (bounds checked on construction)."""

    n_ctx: int = 4096
    n_parallel: int = 2
    n_threads: int | None = None
    n_batch: int = 512
    cache_reuse: int = 0
    cache_ram_mib: int = 2048
    port: int = 0
    host: str = "127.0.0.1"
    verbosity: int = 0
    warmup: bool = False
    isolated: bool = False
    start_timeout_s: float = 600.0

    def __post_init__(self):
        if self.n_ctx < 128:
            raise ConfigError(f"n_ctx must be ≥ 128, got {self.n_ctx}")
        if not 1 <= self.n_parallel <= 64:
            raise ConfigError(f"n_parallel must be in [1, 64], got {self.n_parallel}")
        if self.n_threads is not None and self.n_threads < 1:
            raise ConfigError(f"n_threads must be ≥ 1, got {self.n_threads}")
        if self.n_batch < 1 or self.cache_reuse < 0 or self.cache_ram_mib < 0:
            raise ConfigError("n_batch must be ≥ 1, cache_reuse and cache_ram_mib ≥ 0")
        if self.start_timeout_s <= 0:
            raise ConfigError(f"start_timeout_s must be > 0, got {self.start_timeout_s}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in [0, 65535], got {self.port}")


def _usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return list(range(os.cpu_count() or 1))


def default_threads() -> int:
    """Half the usable cores (≈ physical cores with SMT), at least 1.

    llama.cpp's worker threads spin at barriers, so more threads than free cores is far worse than
    fewer: measured on this 2-core box while another job used one core, SmolLM2 generated 55–61 tok/s
    with 1 thread and 10–29 tok/s with 2.
    """
    return max(1, len(_usable_cpus()) // 2)


def physical_cores() -> int:
    """Usable physical cores: the usable CPUs counted once per set of SMT siblings (Linux sysfs);
    half the usable CPUs where the topology cannot be read."""
    cpus = _usable_cpus()
    siblings = set()
    for cpu in cpus:
        try:
            siblings.add(Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip())
        except OSError:
            return max(1, len(cpus) // 2)
    return max(1, len(siblings))


def default_servers(n_threads: int | None = None) -> int:
    """Embedded servers the ``llamacpp`` backend starts by default: one per ``n_threads`` (default
    :func:`default_threads`) usable physical cores, at least 1 — 2 servers of 1 thread on a 2-core machine
    without SMT, 1 server where SMT siblings make half the CPUs the physical cores.

    Several single-request servers are how scoring uses more cores without changing a number: each
    scoring request runs alone on its server with the prompt cache off, so its log-probabilities are
    those of one request at a time (see ``OpenAICompatBackend._score``); and a server per core, unlike
    one server with more threads, never spins at a barrier waiting for a core another job holds.
    """
    return max(1, physical_cores() // (n_threads or default_threads()))


class LocalServer:
    """A running llama.cpp server. Use as a context manager or call :meth:`stop`.

    In-process (default) the server lives in this interpreter. Its C++ destructor waits for in-flight
    HTTP requests while holding the GIL, so a request *from this process* still in flight would
    deadlock it: :meth:`stop` therefore first waits (up to ``drain_s``) until no slot is busy.
    With ``isolated=True`` the server runs in a child process instead and :meth:`stop` kills it at once
    (SIGKILL): in-flight requests fail with connection errors, which the backends retry. Use that for
    kill/restart tests and whenever a server must be stopped while other threads still use it.
    """

    def __init__(self, model_path: Path, options: LocalServerOptions):
        self.model_path = Path(model_path)
        self.options = options
        self._server: Any = None  # xllamacpp.Server (in-process) when started
        self._proc: subprocess.Popen | None = None  # the child process (isolated) when started
        self.base_url = ""
        t0 = time.perf_counter()
        try:
            self.base_url = self._start_child() if options.isolated else self._start_here()
        except BaseException:  # KeyboardInterrupt included: never leave a started server behind
            self.stop(drain_s=0.0)
            raise
        self.port: int = int(self.base_url.rsplit(":", 1)[1])
        self.load_s = time.perf_counter() - t0
        _LIVE.add(self)
        log.info("llama.cpp server for %s on %s (%.1fs%s)", self.model_path.name, self.base_url, self.load_s,
                 ", child process" if options.isolated else "")

    def _start_child(self) -> str:
        import json
        import select
        import subprocess
        import sys

        import utilabel

        spec = json.dumps({"model": str(self.model_path),
                           "options": {**self.options.__dict__, "isolated": False}})
        env = dict(os.environ)
        src = str(Path(utilabel.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self._proc = subprocess.Popen([sys.executable, "-m", "utilabel.llm.backends._llamacpp_child", spec],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        ready, _, _ = select.select([self._proc.stdout], [], [], self.options.start_timeout_s)  # type: ignore[type-var]
        line = self._proc.stdout.readline() if ready and self._proc.stdout else b""
        try:
            msg = json.loads(line) if line else {"error": "no answer from the child process"}
        except ValueError:
            msg = {"error": f"unexpected output {line[:200]!r}"}
        if "base_url" not in msg:
            self._kill_child()
            raise LLMError(f"isolated llama.cpp server for {self.model_path} failed to start: {msg.get('error')}")
        return msg["base_url"]

    def _kill_child(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait(timeout=30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def _start_here(self) -> str:
        options = self.options
        try:
            import xllamacpp as xlc
        except ImportError as exc:
            from ...errors import MissingExtraError

            raise MissingExtraError("xllamacpp", "local") from exc
        p = xlc.CommonParams()
        p.model.path = str(self.model_path)
        p.n_parallel = options.n_parallel
        p.n_ctx = options.n_ctx * options.n_parallel  # llama.cpp splits n_ctx across the slots
        p.n_batch = options.n_batch
        p.n_ubatch = min(options.n_batch, 512)
        threads = options.n_threads or default_threads()
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.port = options.port
        p.hostnames = [options.host]
        p.cache_prompt = True
        p.n_cache_reuse = options.cache_reuse
        p.cache_ram_mib = options.cache_ram_mib
        p.verbosity = options.verbosity
        p.warmup = options.warmup
        # SIGINT is blocked while the server starts: its threads inherit the mask, so a Ctrl-C never
        # interrupts a system call inside them (one arriving as the port opened hung the start-up for
        # good). The constructor holds the GIL, so Python could not react earlier anyway; a Ctrl-C sent
        # meanwhile stays pending and raises KeyboardInterrupt once ``self._server`` is set (then stopped).
        with _START_LOCK:
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:
                self._server = xlc.Server(p)
            except Exception as exc:  # noqa: BLE001 - xllamacpp raises plain exceptions
                raise LLMError(f"llama.cpp server failed to start with {self.model_path}: {exc}") from exc
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        address = self._server.listening_address
        if not address:
            self._server = None
            raise LLMError(f"llama.cpp server did not bind {options.host}:{options.port}")
        return address.rstrip("/")

    @property
    def running(self) -> bool:
        return self._server is not None or (self._proc is not None and self._proc.poll() is None)

    def _slots(self) -> list | None:
        """The server's ``/slots`` (answered by its main loop), or None when it cannot be asked."""
        import json
        import urllib.request

        url = self.base_url or (self._server.listening_address.rstrip("/") if self._server is not None else "")
        try:
            with urllib.request.urlopen(url + "/slots", timeout=2) as resp:
                return json.load(resp)
        except (OSError, ValueError):
            return None

    def busy_slots(self) -> int:
        """Slots processing a request right now (0 when the server cannot be asked)."""
        return sum(bool(slot.get("is_processing")) for slot in self._slots() or [])

    def stop(self, drain_s: float = 30.0) -> None:
        """Stop serving and free the model (idempotent).

        Isolated: kill the child process now. In-process: wait up to ``drain_s`` for busy slots to
        finish (see the class docstring), then destroy the server.
        """
        if getattr(self, "_proc", None) is not None:
            self._kill_child()
            log.info("isolated llama.cpp server on %s killed", self.base_url)
            return
        if getattr(self, "_server", None) is None:
            return
        # Destroyed before its main loop runs (a Ctrl-C just after start-up), the server never stops:
        # wait (≤ 10 s) until the loop answers /slots.
        ready_by = time.monotonic() + 10.0
        while self._slots() is None and time.monotonic() < ready_by:
            time.sleep(0.02)
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and self.busy_slots():
            time.sleep(0.05)
        server, self._server = self._server, None
        del server  # the C++ destructor stops the HTTP thread and the main loop
        log.info("llama.cpp server on %s stopped", self.base_url)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            self.stop(drain_s=0.0)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def start_local_server(model: str | os.PathLike | None = None, **options: Any) -> LocalServer:
    """Start llama.cpp's server on 127.0.0.1 for ``model`` (name or .gguf path; default: the default model).

    ``options`` are :class:`LocalServerOptions` fields. Returns once the model is loaded and the port is
    bound; ``.base_url`` is ``http://127.0.0.1:PORT`` (append ``/v1`` for OpenAI clients).
    """
    valid = set(LocalServerOptions.__dataclass_fields__)
    unknown = sorted(set(options) - valid)
    if unknown:
        raise ConfigError(f"unknown llama.cpp server option(s) {unknown}; valid: {sorted(valid)}")
    return LocalServer(resolve_model(model), LocalServerOptions(**options))


@atexit.register
def _stop_all() -> None:  # pragma: no cover - runs at interpreter exit
    for server in list(_LIVE):
        server.stop()


@register_backend
class LlamaCppBackend(OpenAICompatBackend):
    """The ``openai`` backend bound to embedded llama.cpp servers it starts and stops itself.

    ``model``: a registered name (``qwen2.5-coder-1.5b`` default, ``smollm2-135m`` for tests) or a path to
    a .gguf. ``n_servers``: how many servers to start on the model (default :func:`default_servers`);
    requests are spread over them (scoring: the least busy one). Server options (each server's): see
    :class:`LocalServerOptions`. Client options (``timeout_s``, ``max_retries``, ...) go to the ``openai``
    backend; ``concurrency`` defaults to ``n_servers × n_parallel``.
    """

    name = "llamacpp"

    def __init__(self, model: str | os.PathLike | None = None, n_servers: int | None = None, **options: Any):
        server_keys = set(LocalServerOptions.__dataclass_fields__)
        server_opts = {k: options.pop(k) for k in list(options) if k in server_keys}
        if "base_url" in options:
            raise ConfigError("the llamacpp backend starts its own server; to use a running one, "
                              "choose the 'openai' backend with base_url=...")
        unknown = sorted(set(options) - set(OpenAICompatBackend.option_names()))
        if unknown:
            valid = server_keys | {"n_servers"} | set(OpenAICompatBackend.option_names()) - {"base_url"}
            raise ConfigError(f"unknown option(s) {unknown} for LLM backend 'llamacpp'; valid: {', '.join(sorted(valid))}")
        if n_servers is None:
            n_servers = default_servers(server_opts.get("n_threads"))
        if not 1 <= n_servers <= 64:
            raise ConfigError(f"n_servers must be in [1, 64], got {n_servers}")
        if n_servers > 1 and server_opts.get("port"):
            raise ConfigError("a fixed port serves one server: give n_servers=1 with port=...")
        self.servers: list[LocalServer] = []
        try:
            for _ in range(n_servers):
                self.servers.append(start_local_server(model, **server_opts))
            self.server = self.servers[0]
            options.setdefault("concurrency", n_servers * self.server.options.n_parallel)
            name = str(model) if model is not None and str(model) in MODELS else self.server.model_path.name
            super().__init__(model=name, base_url=[s.base_url + "/v1" for s in self.servers], **options)
        except BaseException:
            for server in self.servers:
                server.stop()
            raise

    def close(self) -> None:
        super().close()
        for server in getattr(self, "servers", []):
            server.stop()


__all__ = ["LlamaCppBackend", "LocalServer", "LocalServerOptions", "TEST_MODEL", "default_servers", "default_threads",
           "physical_cores", "start_local_server"]
