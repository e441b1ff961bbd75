"""Run a real anvil node (npm package @foundry-rs/anvil) on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from screener_base.errors import ChainError

REPO = Path(__file__).resolve().parents[3]


def anvil_binary() -> str:
    """The anvil binary: $SCREENER_ANVIL, else the npm package under ./node_modules, else PATH."""
    explicit = os.environ.get("SCREENER_ANVIL")
    if explicit:
        return explicit
    for root in (REPO, Path.cwd()):
        for candidate in sorted((root / "node_modules" / "@foundry-rs").glob("anvil-*/bin/anvil")):
            return str(candidate)
    found = shutil.which("anvil")
    if found:
        return found
    raise ChainError(
        "anvil binary not found", "run `make setup` (npm ci installs @foundry-rs/anvil) or set SCREENER_ANVIL"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Anvil:
    url: str
    port: int
    chain_id: int
    process: subprocess.Popen[bytes]
    _ids: int = field(default=0)

    def rpc(self, method: str, params: list[Any] | None = None, timeout_s: float = 30.0) -> Any:
        self._ids += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._ids, "method": method, "params": params or []}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310 (loopback)
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 (loopback only)
            reply = json.loads(resp.read())
        if "error" in reply:
            raise ChainError(f"anvil {method} failed: {reply['error']}", "check the call's parameters")
        return reply["result"]

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)


@contextmanager
def run_anvil(
    chain_id: int = 31337, extra_args: list[str] | None = None, startup_timeout_s: float = 20.0
) -> Iterator[Anvil]:
    port = free_port()
    args = [
        anvil_binary(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--silent",
        *(extra_args or []),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    node = Anvil(url=f"http://127.0.0.1:{port}", port=port, chain_id=chain_id, process=proc)
    deadline = time.monotonic() + startup_timeout_s
    try:
        while True:
            try:
                node.rpc("eth_chainId", timeout_s=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr and proc.poll() is not None else ""
                    raise ChainError(f"anvil did not start on port {port}: {err}", "check the binary") from None
                time.sleep(0.05)
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
