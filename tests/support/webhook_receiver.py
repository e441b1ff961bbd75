"""A real HTTP webhook receiver on loopback that records what it is sent and can be told to fail."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class WebhookReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with 503 before accepting
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.body for r in self.received]

    def wait_for(self, predicate: Callable[[list[Any]], bool], timeout_s: float = 60.0, what: str = "") -> list[Any]:
        """Poll until ``predicate(bodies)`` holds; fail (AssertionError) on the deadline."""
        deadline = time.monotonic() + timeout_s
        while True:
            bodies = self.bodies()
            if predicate(bodies):
                return bodies
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook receiver: gave up waiting for {what or predicate}; got {bodies}")
            time.sleep(0.1)


def _handler(receiver: WebhookReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            with receiver.lock:
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    status = 503
                else:
                    status = 200
                    receiver.received.append(Received(self.path, dict(self.headers), json.loads(raw or b"null")))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def run_webhook_receiver(path: str = "/hook/secret-token") -> Iterator[WebhookReceiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(WebhookReceiver(url="")))
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{server.server_address[1]}{path}")
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
