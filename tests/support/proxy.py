"""A fault-injecting JSON-RPC proxy on loopback, in front of a real node (anvil).

Tests point the screener at ``proxy.url`` instead of the node and script what goes wrong::

    with FaultProxy(anvil.url, [Fault("http429", every=3, retry_after_s=0), Fault("timeout", times=2)]) as p:
        ...
        assert p.injected["http429"] > 0

Faults (``Fault.kind``):
- ``http500`` / ``http429`` (optional Retry-After) / ``drop`` (connection closed, no reply) / ``reset``
  (TCP RST: connection reset by peer) /
  ``timeout`` (reply delayed by ``delay_s``) / ``truncate`` (valid HTTP, JSON body cut short):
  apply to the whole HTTP request.
- ``http_body``: HTTP status ``code`` with ``message`` as the body (TronGrid's 403 throttling JSON, say).
- ``rpc_error``: the item gets ``{"code": code, "message": message}``.
- ``range_limit``: eth_getLogs spanning more than ``max_span`` blocks fails with a provider-style message
  (``style``: ``infura`` / ``alchemy`` give a hint range, ``tron`` a max span, ``plain`` nothing,
  ``verbatim`` answers ``code`` and ``message``: a real provider's recorded text in which ``{span}``,
  ``{lo}``/``{hi}`` (hex) and ``{lo_d}``/``{hi_d}`` stand for this request's limit and suggested range).
- ``result_limit``: eth_getLogs returning more than ``max_results`` logs fails like Infura's
  "query returned more than N results" (with a hint range unless ``style="plain"``).
- ``wrong_chain``: eth_chainId answers ``chain_id``.
``gate`` (tests/support/trongrid.py) answers an HTTP request before any fault, e.g. as TronGrid's limiter.
``lag_blocks`` makes the proxy a node that is that many blocks behind: head, tags, blocks, logs and
transactions above its head are hidden (eth_getLogs is clamped silently, the worst real-world behaviour).
``flip_lag`` answers every other HTTP request as a node that many blocks further behind (a load balancer
in front of two nodes at different heights; counted as ``injected["flip"]``). ``stuck_at`` is a node whose
head stopped at that block (settable while running). ``lag_methods``: ``lag_blocks`` applies only to HTTP
requests whose (first) method is one of these, e.g. a balancer that sends eth_getLogs to a replica behind.
Selection: ``methods`` (None = any), ``every`` n-th matching request, at most ``times`` injections,
optionally only after ``after`` matching requests. Deterministic: no randomness unless ``probability``
is set, which uses the proxy's seeded RNG.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class Fault:
    kind: str
    methods: frozenset[str] | None = None
    every: int = 1
    times: int | None = None
    after: int = 0
    probability: float | None = None
    retry_after_s: float | None = None
    delay_s: float = 1.0
    code: int = -32000
    message: str = "injected failure"
    max_span: int = 10
    max_results: int = 10
    style: str = "infura"
    chain_id: int = 1
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if isinstance(self.methods, (list, set, tuple)):
            self.methods = frozenset(self.methods)

    def applies(self, method: str | None, rng: random.Random) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        if self.probability is not None:
            hit = rng.random() < self.probability
        else:
            hit = (self.seen - self.after) % self.every == 0
        if hit:
            self.fired += 1
        return hit


HTTP_KINDS = ("http500", "http429", "http_body", "drop", "reset", "timeout", "truncate")
_TAGS = ("latest", "pending", "safe", "finalized")


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        faults: list[Fault] | None = None,
        *,
        lag_blocks: int = 0,
        seed: int = 7,
        flip_lag: int = 0,
        stuck_at: int | None = None,
        lag_methods: frozenset[str] | None = None,
        gate: Callable[[], tuple[int, bytes] | None] | None = None,
    ):
        self.upstream = upstream
        self.gate = gate  # asked first for every HTTP request: (status, body) answers it instead of the node
        self.faults: list[Fault] = list(faults or [])
        self.lag_blocks = lag_blocks
        self.flip_lag = flip_lag
        self.stuck_at = stuck_at
        self.lag_methods = lag_methods
        self._local = threading.local()
        self._flips = 0
        self.injected: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30.0)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fault-proxy", daemon=True
        )

    # --- lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def set_faults(self, faults: list[Fault]) -> None:
        with self._lock:
            self.faults = list(faults)

    # --- decisions -----------------------------------------------------------------------------------
    def _pick(
        self, kinds: tuple[str, ...], method: str | None, condition: Callable[[Fault], bool] | None = None
    ) -> Fault | None:
        """The first fault of ``kinds`` that fires for this request (``condition``: it would bite at all)."""
        with self._lock:
            for fault in self.faults:
                if fault.kind not in kinds or (condition is not None and not condition(fault)):
                    continue
                if fault.applies(method, self._rng):
                    self.injected[fault.kind] += 1
                    return fault
        return None

    def _upstream(self, method: str, params: list[Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return dict(self._http.post(self.upstream, json=body).json())

    def _begin_request(self, method: str | None = None) -> None:
        """Pick this HTTP request's lag (flip_lag: every other request is served by the node behind)."""
        lag = self.lag_blocks if self.lag_methods is None or method in self.lag_methods else 0
        if self.flip_lag:
            with self._lock:
                self._flips += 1
                behind = self._flips % 2 == 0
                if behind:
                    self.injected["flip"] += 1
            lag += self.flip_lag if behind else 0
        self._local.lag = lag

    def _lag(self) -> int:
        return int(getattr(self._local, "lag", self.lag_blocks))

    def _head(self) -> int:
        head = int(self._upstream("eth_blockNumber", [])["result"], 16) - self._lag()
        return head if self.stuck_at is None else min(head, self.stuck_at)

    # --- one JSON-RPC item -----------------------------------------------------------------------------
    def handle_item(self, item: dict[str, Any]) -> dict[str, Any]:
        method, params, rid = item.get("method"), list(item.get("params") or []), item.get("id")
        with self._lock:
            self.requests[str(method)] += 1
        fault = self._pick(("rpc_error", "wrong_chain", "range_limit"), method, lambda f: _bites(f, method, params))
        if fault is not None:
            return {"jsonrpc": "2.0", "id": rid, **self._fault_reply(fault, method, params)}
        if self._lag() or self.stuck_at is not None:
            result = self._lagged(method, params)
            if result is not _PASS:
                return {"jsonrpc": "2.0", "id": rid, "result": result}
        answer = self._upstream(str(method), params)
        if method == "eth_getLogs" and "result" in answer:
            count = len(answer["result"])
            limit = self._pick(("result_limit",), method, lambda f: count > f.max_results)
            if limit is not None:
                return {"jsonrpc": "2.0", "id": rid, "error": _too_many(limit, params[0])}
        answer["id"] = rid
        return answer

    def _fault_reply(self, fault: Fault, method: Any, params: list[Any]) -> dict[str, Any]:
        if fault.kind == "wrong_chain":
            return {"result": hex(fault.chain_id)}
        if fault.kind == "range_limit":
            return {"error": _range_error(fault, int(params[0]["fromBlock"], 16))}
        return {"error": {"code": fault.code, "message": fault.message}}

    def _lagged(self, method: Any, params: list[Any]) -> Any:
        head = self._head()
        if method == "eth_blockNumber":
            return hex(head)
        if method == "eth_getBlockByNumber":
            tag = params[0]
            if tag in _TAGS:
                number = head if tag in ("latest", "pending") else min(head, _tag_number(self, tag))
                return self._upstream(method, [hex(number), *params[1:]]).get("result")
            return None if int(tag, 16) > head else _PASS
        if method == "eth_getLogs":
            flt = dict(params[0])
            to_block = flt.get("toBlock", "latest")
            to_number = head if to_block in _TAGS else min(int(to_block, 16), head)
            if int(flt.get("fromBlock", "0x0"), 16) > to_number:
                return []
            flt["toBlock"] = hex(to_number)
            return self._upstream(method, [flt]).get("result")
        if method in ("eth_getTransactionByHash", "eth_getTransactionReceipt", "eth_getBlockByHash"):
            result = self._upstream(method, params).get("result")
            if result and int(result.get("blockNumber") or result.get("number") or "0x0", 16) > head:
                return None
            return result
        return _PASS

    # --- HTTP --------------------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    payload = json.loads(raw)
                except ValueError:
                    self._send(400, b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}')
                    return
                first = payload[0] if isinstance(payload, list) and payload else payload
                method = first.get("method") if isinstance(first, dict) else None
                proxy._begin_request(method)
                refusal = proxy.gate() if proxy.gate is not None else None
                if refusal is not None:
                    self._send(*refusal)
                    return
                fault = proxy._pick(HTTP_KINDS, method)
                if fault is not None and fault.kind == "drop":
                    self.close_connection = True
                    return
                if fault is not None and fault.kind == "reset":
                    self.close_connection = True
                    # linger 0: close() sends RST instead of FIN, so the client sees "connection reset by peer"
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return
                if fault is not None and fault.kind == "http500":
                    self._send(500, b"internal server error")
                    return
                if fault is not None and fault.kind == "http429":
                    extra = {"Retry-After": str(fault.retry_after_s)} if fault.retry_after_s is not None else {}
                    self._send(429, b'{"error":"rate limited"}', extra)
                    return
                if fault is not None and fault.kind == "http_body":  # status ``code``, body ``message``
                    self._send(fault.code, fault.message.encode())
                    return
                if fault is not None and fault.kind == "timeout":
                    time.sleep(fault.delay_s)
                if isinstance(payload, list):
                    reply: Any = [proxy.handle_item(item) for item in payload]
                else:
                    reply = proxy.handle_item(payload)
                body = json.dumps(reply).encode()
                if fault is not None and fault.kind == "truncate":
                    body = body[: max(1, len(body) // 2)]
                self._send(200, body)

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its timeout): nothing to do

        return Handler


_PASS = object()


def _bites(fault: Fault, method: Any, params: list[Any]) -> bool:
    if fault.kind == "wrong_chain":
        return bool(method == "eth_chainId")
    if fault.kind == "range_limit":
        if method != "eth_getLogs":
            return False
        return bool(int(params[0]["toBlock"], 16) - int(params[0]["fromBlock"], 16) + 1 > fault.max_span)
    return True


def _tag_number(proxy: FaultProxy, tag: str) -> int:
    block = proxy._upstream("eth_getBlockByNumber", [tag, False]).get("result")
    return int(block["number"], 16) if block else 0


def _range_error(fault: Fault, low: int) -> dict[str, Any]:
    high = low + fault.max_span - 1
    if fault.style == "verbatim":  # a real provider's text (tests/data/provider_errors.json), its numbers ours
        return {"code": fault.code, "message": _fill(fault.message, fault.max_span, low, high)}
    if fault.style == "alchemy":
        message = (
            "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no limit "
            f"on the response size. Based on your parameters, this block range should work: [{hex(low)}, {hex(high)}]"
        )
        return {"code": -32602, "message": message}
    if fault.style == "tron":
        return {"code": -32005, "message": f"exceed max block range: {fault.max_span}"}
    if fault.style == "plain":
        return {"code": -32000, "message": "block range too large"}
    return {
        "code": -32005,
        "message": f"query exceeds max block range. Try with this block range [{hex(low)}, {hex(high)}].",
    }


def _too_many(fault: Fault, flt: dict[str, Any]) -> dict[str, Any]:
    low, high = int(flt["fromBlock"], 16), int(flt["toBlock"], 16)
    if fault.style == "verbatim":
        return {"code": fault.code, "message": _fill(fault.message, fault.max_span, low, low + (high - low) // 2)}
    message = f"query returned more than {fault.max_results} results"
    if fault.style != "plain" and high > low:
        message += f". Try with this block range [{hex(low)}, {hex(low + (high - low) // 2)}]."
    return {"code": -32005, "message": message}


def _fill(template: str, span: int, low: int, high: int) -> str:
    """A recorded message with its limit and suggested range as this request's ({span}, {lo}-{hi}, {lo_d}-{hi_d})."""
    return (
        template.replace("{span}", str(span))
        .replace("{lo}", hex(low))
        .replace("{hi}", hex(high))
        .replace("{lo_d}", str(low))
        .replace("{hi_d}", str(high))
    )
