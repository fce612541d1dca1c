"""The review web app (Starlette): server-rendered pages, a little plain JavaScript, no build step.

Routes: ``GET /`` redirects to the first query of the queue not yet labelled by this annotator;
``GET /q/{pos}`` shows queue position ``pos`` (the annotator's own labels if already submitted,
else the LLM's suggestion, marked as such); ``POST /q/{pos}`` stores the labels and moves to the
next open query (skipped ones come round again at the end); ``/static/*`` serves the script and
style. Handlers run on the one event-loop thread, so submissions are written one at a time.

Safety: Jinja2 autoescaping renders every query and passage as text, and the Content-Security-
Policy allows only this server's own script file (an injected ``<script>`` could not run even if it
got through); every request that changes data is a POST carrying the per-process CSRF token; when a
``token`` is set (the server listens beyond 127.0.0.1), a request must present it (``?token=`` once,
which sets an HttpOnly cookie, or ``Authorization: Bearer``) or is refused with 403; on 127.0.0.1 the
Host header must name the loopback address (no DNS rebinding).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ..errors import ConfigError, require
from .queue import ReviewQueue
from .store import LabelStore

HERE = Path(__file__).parent
COOKIE = "utilabel_review_token"
FOLD_AT = 320  # characters of a passage shown before the rest is folded
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}


def fold(text: str, at: int = FOLD_AT) -> tuple[str, str]:
    """``text`` split at the last space before ``at`` characters: (shown, folded); folded is '' when short."""
    if len(text) <= at:
        return text, ""
    cut = text.rfind(" ", 0, at)
    cut = cut if cut > at // 2 else at
    return text[:cut], text[cut:]


def _token_ok(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class TokenGate:
    """ASGI middleware: refuse (403) any request that does not present ``token``."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, RedirectResponse

        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if _token_ok(request.query_params.get("token"), self.token):
            response = RedirectResponse(request.url.path, status_code=303)  # keep the token out of the address bar
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            return await response(scope, receive, send)
        auth = request.headers.get("authorization", "")
        if _token_ok(request.cookies.get(COOKIE), self.token) or _token_ok(auth.removeprefix("Bearer "), self.token):
            return await self.app(scope, receive, send)
        await PlainTextResponse("403: this review server needs its token; open the URL it printed\n", 403)(
            scope, receive, send)


class Review:
    """Request handlers over one :class:`ReviewQueue` and one annotator's :class:`LabelStore`."""

    def __init__(self, queue: ReviewQueue, store: LabelStore):
        jinja2 = require("jinja2", "review")
        self.queue, self.store = queue, store
        self.csrf = secrets.token_urlsafe(32)
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                 undefined=jinja2.StrictUndefined)
        self.page = env.get_template("page.html")
        self.static = {name: (HERE / "static" / name).read_bytes() for name in STATIC}
        # asset URLs carry a hash of their content, so the browser may cache them for good
        self.asset_version = hashlib.sha256(b"".join(self.static.values())).hexdigest()[:12]

    def next_open(self, after: int) -> int | None:
        """The first position after ``after`` (wrapping round) whose query this annotator has not labelled."""
        n = len(self.queue.items)
        for step in range(1, n + 1):
            pos = (after + step) % n
            if pos != after and self.queue.items[pos].query_id not in self.store.mine:
                return pos
        return None

    def render(self, pos: int | None, status: int = 200, message: str = ""):
        from starlette.responses import HTMLResponse

        grades = list(range(self.queue.max_grade + 1))
        ctx: dict[str, Any] = {"pos": pos, "done": self.queue.labelled(self.store.mine), "total": len(self.queue.items),
               "runs_total": self.queue.total, "annotator": self.store.annotator, "out": str(self.store.out),
               "message": message, "grades": grades, "graded": self.queue.max_grade > 1,
               "methods": self.queue.methods, "csrf": self.csrf, "v": self.asset_version}
        if pos is not None:
            item = self.queue.items[pos]
            mine = self.store.mine.get(item.query_id)
            passages = []
            for p in item.passages:
                shown, folded = fold(p.text)
                grade = mine["labels"].get(p.doc_id, p.suggestion) if mine else p.suggestion
                passages.append({"p": p, "shown": shown, "folded": folded, "grade": grade})
            n = len(self.queue.items)
            ctx.update(item=item, passages=passages, mine=mine is not None, prev=(pos - 1) % n,
                       skip=self.next_open(pos))
        return HTMLResponse(self.page.render(**ctx), status_code=status, headers=HEADERS)

    async def home(self, request):
        from starlette.responses import RedirectResponse

        pos = self.next_open(-1) if self.queue.items else None
        return self.render(None) if pos is None else RedirectResponse(f"/q/{pos}", status_code=303)

    async def show(self, request):
        pos = request.path_params["pos"]
        if not 0 <= pos < len(self.queue.items):
            return self.render(None, 404, f"no query at queue position {pos}")
        return self.render(pos)

    async def submit(self, request):
        from starlette.responses import RedirectResponse

        pos = request.path_params["pos"]
        if not 0 <= pos < len(self.queue.items):
            return self.render(None, 404, f"no query at queue position {pos}")
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace"),
                                              keep_blank_values=True).items()}
        if not _token_ok(form.get("csrf"), self.csrf):
            return self.render(pos, 403, "the form was stale (the server restarted) or forged: nothing saved, "
                                         "label this query again")
        item = self.queue.items[pos]
        if form.get("query_id") != item.query_id:
            return self.render(pos, 409, "the form belongs to another query: nothing saved")
        grades = {str(g): g for g in range(self.queue.max_grade + 1)}
        labels = {}
        for i, p in enumerate(item.passages):
            value = form.get(f"g{i}")
            if value not in grades:
                return self.render(pos, 400, f"passage {i + 1} needs a label 0-{self.queue.max_grade}: nothing saved")
            labels[p.doc_id] = grades[value]
        self.store.submit(item.query_id, labels)
        nxt = self.next_open(pos)
        return RedirectResponse("/" if nxt is None else f"/q/{nxt}", status_code=303)

    async def asset(self, request):
        from starlette.responses import Response

        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found\n", 404, media_type="text/plain")
        return Response(self.static[name], media_type=STATIC[name],
                        headers={**HEADERS, "Cache-Control": "public, max-age=31536000, immutable"})


def create_app(queue: ReviewQueue, store: LabelStore, token: str | None = None, local: bool = True):
    """The ASGI app; ``token`` gates every request; ``local`` accepts only loopback Host headers."""
    require("starlette", "review")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.routing import Route

    review = Review(queue, store)
    middleware = []
    if local:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]"]))
    if token:
        middleware.append(Middleware(TokenGate, token=token))
    routes = [Route("/", review.home), Route("/q/{pos:int}", review.show, methods=["GET"]),
              Route("/q/{pos:int}", review.submit, methods=["POST"]), Route("/static/{name}", review.asset)]
    return Starlette(routes=routes, middleware=middleware)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0 = any free port); a busy port or bad host is a one-line error.
    Connections made before the server loop runs wait in the backlog."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # without it every keep-alive response waits ~40 ms for a delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(app, sock: socket.socket) -> None:
    """Serve ``app`` on the bound ``sock`` until SIGINT/SIGTERM (uvicorn)."""
    uvicorn = require("uvicorn", "review")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    server.run(sockets=[sock])


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
