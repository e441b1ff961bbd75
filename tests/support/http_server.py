"""A real HTTP server on loopback with scripted replies, for fetch/webhook tests.

Each path has a script of replies served in order; the last one repeats. A reply can wait before
answering (to trip a client read timeout), or announce a full Content-Length and hang up half-way.

    with serve() as server:
        server.route("/sdn.xml", Reply(status=503), Reply(body=data))
        url = server.url("/sdn.xml")
        ...
        assert server.hits("/sdn.xml") == 2
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # wait this long before answering
    cut_at: int | None = None  # send only this many body bytes, then close (Content-Length stays full)
    sized: bool = True  # False: no Content-Length, the body ends when the connection closes
    drip_s: float = 0.0  # > 0: send the body 1 KiB at a time with this pause between pieces


@dataclass
class _Route:
    replies: list[Reply]
    hits: int = 0
    bodies: list[bytes] = field(default_factory=list)


class ScriptedServer:
    def __init__(self) -> None:
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._answer(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server._answer(self, self.rfile.read(length) if length else b"")

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up between requests

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, *replies: Reply) -> str:
        """Script the replies for ``path`` (replacing any earlier script); returns its URL."""
        with self._lock:
            self._routes[path] = _Route(list(replies) or [Reply(status=404)])
        return self.url(path)

    def hits(self, path: str) -> int:
        with self._lock:
            route = self._routes.get(path)
            return route.hits if route else 0

    def bodies(self, path: str) -> list[bytes]:
        with self._lock:
            route = self._routes.get(path)
            return list(route.bodies) if route else []

    def _next_reply(self, path: str, body: bytes) -> Reply:
        with self._lock:
            route = self._routes.get(path.split("?", 1)[0])
            if route is None:
                return Reply(status=404, body=b"no such route")
            reply = route.replies[min(route.hits, len(route.replies) - 1)]
            route.hits += 1
            route.bodies.append(body)
            return reply

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        reply = self._next_reply(handler.path, body)
        if reply.delay_s and self._stop.wait(reply.delay_s):
            return  # server closing
        try:
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            if reply.sized:
                handler.send_header("Content-Length", str(len(reply.body)))
            if reply.cut_at is not None or not reply.sized:
                handler.send_header("Connection", "close")
            handler.end_headers()
            body = reply.body if reply.cut_at is None else reply.body[: reply.cut_at]
            piece = 1024 if reply.drip_s else max(1, len(body))
            for start in range(0, len(body), piece):
                if start and reply.drip_s and self._stop.wait(reply.drip_s):
                    return
                handler.wfile.write(body[start : start + piece])
                handler.wfile.flush()
            if reply.cut_at is not None or not reply.sized:
                handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its read timeout fired); that is the point of a delayed reply

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextmanager
def serve(**routes: list[Reply]) -> Iterator[ScriptedServer]:
    """A running server; keyword routes map "/name" paths given as name=[replies] for convenience."""
    server = ScriptedServer()
    try:
        for name, replies in routes.items():
            server.route("/" + name, *replies)
        yield server
    finally:
        server.close()
