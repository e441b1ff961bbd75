"""A JSON-RPC server on loopback that replays recorded real node responses.

This is a fake node only in the sense that it replays real recorded responses: every answer is one a real
node gave to that method and params (ethereum-etl's recorded mainnet responses, java-tron's documented Nile
captures), so the product's real read code meets real response shapes without a network (the standard: "a
replay server of recorded real responses beats invented ones")::

    recordings = [Recording("eth_getLogs", [log_filter], {"result": [...]})]
    with ReplayServer(recordings, chain_id=1, head=17173050) as node:
        client = RpcClient([node.url], chain_id=1)
        ...
        assert node.misses == []

Matching: method plus params, the params compared after normalisation: hex digits lowercased, quantities
canonical (``"0x01"`` == ``"0x1"``), object keys in any order. A hex string that is 20 or 32 bytes (an address,
a hash, a topic word) or sits under a data key (``data``, ``input``, ``address``, ``topics``, ...) keeps its
leading zeros: there they are part of the value. Single requests and batches are answered; each reply carries
the request's id. An unrecorded request gets a JSON-RPC error ``not recorded: <method> <params>`` and is kept
in ``misses``; unless ``allow_misses`` is set, leaving the ``with`` block with misses fails the test, because
the product may have turned that error into a quiet fallback (a batch item it treats as optional).
``eth_chainId`` and ``eth_blockNumber`` are answered from ``chain_id`` and ``head`` when given (``head`` may be
changed while running); otherwise they need recordings like any other method.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HEX_DIGITS = frozenset("0123456789abcdef")
# Values under these keys are byte strings, not quantities: leading zeros are significant.
_DATA_KEYS = frozenset({"data", "input", "address", "topics", "blockHash", "to", "from", "hash"})
_DATA_LENGTHS = (42, 66)  # 0x + 20 bytes (address), 0x + 32 bytes (hash, topic word)
MAX_BODY_BYTES = 16 << 20
MAX_BATCH_ITEMS = 1000
REQUEST_TIMEOUT_S = 10.0  # a client that stops sending mid-request frees its thread after this


@dataclass(frozen=True)
class Recording:
    """One recorded exchange: ``response`` is the node's JSON-RPC reply (``result`` or ``error``; id ignored)."""

    method: str
    params: list[Any]
    response: Mapping[str, Any]

    def __post_init__(self) -> None:
        if ("result" in self.response) == ("error" in self.response):
            raise ValueError(f"recording of {self.method}: the response needs exactly one of result and error")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Recording:
        return cls(str(raw["method"]), list(raw.get("params") or []), raw["response"])

    def key(self) -> str:
        return request_key(self.method, self.params)


def _normalise(value: Any, key: str | None = None) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _normalise(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, key) for v in value]
    if not isinstance(value, str) or value[:2].lower() != "0x":
        return value
    text = value.lower()
    if len(text) == 2 or not _HEX_DIGITS.issuperset(text[2:]):
        return text
    if key in _DATA_KEYS or len(text) in _DATA_LENGTHS:
        return text
    return hex(int(text, 16))


def request_key(method: str, params: Any) -> str:
    """The matching key of a request: method and normalised params as canonical JSON."""
    return json.dumps([method, _normalise(list(params or []))], sort_keys=True, separators=(",", ":"))


def _error(rid: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


class ReplayServer:
    def __init__(
        self,
        recordings: Iterable[Recording | Mapping[str, Any]],
        *,
        chain_id: int | None = None,
        head: int | None = None,
        allow_misses: bool = False,
    ) -> None:
        self._answers: dict[str, Mapping[str, Any]] = {}
        for raw in recordings:
            rec = raw if isinstance(raw, Recording) else Recording.from_dict(raw)
            known = self._answers.setdefault(rec.key(), rec.response)
            if known != rec.response:  # a replay must never depend on which of two answers it happens to pick
                raise ValueError(f"two different recorded responses for {rec.method} {rec.params}")
        self.chain_id = chain_id
        self.head = head
        self.allow_misses = allow_misses
        self.requests: Counter[str] = Counter()  # by method, every item of every batch
        self.misses: list[tuple[str, list[Any]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="replay-rpc", daemon=True
        )

    # --- lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.stop()
        if exc_type is None and self.misses and not self.allow_misses:
            listed = "; ".join(f"{m} {json.dumps(p)[:200]}" for m, p in self.misses[:5])
            raise AssertionError(f"{len(self.misses)} request(s) had no recording: {listed}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- one JSON-RPC item -----------------------------------------------------------------------------
    def handle_item(self, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("method"), str):
            return _error(item.get("id") if isinstance(item, dict) else None, -32600, "invalid request")
        method, rid = item["method"], item.get("id")
        params = item.get("params") or []
        with self._lock:
            self.requests[method] += 1
            if method == "eth_chainId" and self.chain_id is not None:
                return {"jsonrpc": "2.0", "id": rid, "result": hex(self.chain_id)}
            if method == "eth_blockNumber" and self.head is not None:
                return {"jsonrpc": "2.0", "id": rid, "result": hex(self.head)}
            answer = self._answers.get(request_key(method, params))
            if answer is None:
                self.misses.append((method, params))
        if answer is None:
            return _error(rid, -32000, f"not recorded: {method} {json.dumps(params, separators=(',', ':'))}")
        reply = {k: v for k, v in answer.items() if k in ("result", "error")}
        return {"jsonrpc": "2.0", "id": rid, **reply}

    def _reply_to(self, payload: Any) -> Any:
        if not isinstance(payload, list):
            return self.handle_item(payload)
        if not payload:
            return _error(None, -32600, "empty batch")
        if len(payload) > MAX_BATCH_ITEMS:
            return _error(None, -32600, f"batch of {len(payload)} items exceeds {MAX_BATCH_ITEMS}")
        return [self.handle_item(item) for item in payload]

    # --- HTTP --------------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = REQUEST_TIMEOUT_S

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self.close_connection = True
                    self._send(413, b'{"error":"request too large"}')
                    return
                try:
                    payload = json.loads(self.rfile.read(length))
                except ValueError:
                    self._send(400, json.dumps(_error(None, -32700, "parse error")).encode())
                    return
                self._send(200, json.dumps(replay._reply_to(payload)).encode())

            def _send(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): nothing to answer

        return Handler
