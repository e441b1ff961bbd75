"""Real `screener run` processes for tests: start, wait for conditions (polling, with deadlines), stop, kill."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
SCREENER = [sys.executable, "-m", "screener"]
SAMPLE = re.compile(r'^([a-z_:][a-z0-9_:]*)(\{([a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$')


@dataclass
class DaemonProc:
    proc: subprocess.Popen[bytes]
    config: Path
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 90.0) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise AssertionError(
                f"daemon did not stop within {timeout_s}s after signal {sig}:\n{self.log_text()}"
            ) from None

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)


def start_daemon(config: Path, log: Path, extra_env: dict[str, str] | None = None) -> DaemonProc:
    out = log.open("ab")
    env = {**os.environ, **(extra_env or {})}
    proc = subprocess.Popen([*SCREENER, "--config", str(config), "run"], stdout=out, stderr=subprocess.STDOUT, env=env)
    out.close()
    return DaemonProc(proc, config, log)


def cli(config: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*SCREENER, "--config", str(config), "--operator", "test", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert proc.returncode == 0, f"screener {' '.join(args)} failed: {proc.stderr}"
    return proc


def wait_for(
    probe: Callable[[], T | None],
    what: str,
    timeout_s: float = 90.0,
    daemons: tuple[DaemonProc, ...] = (),
    interval_s: float = 0.2,
) -> T:
    """Poll ``probe`` until it returns something truthy; fail on the deadline or if a daemon dies."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = probe()
        if got:
            return got
        for d in daemons:
            if not d.alive():
                raise AssertionError(f"daemon exited ({d.proc.returncode}) while waiting for {what}:\n{d.log_text()}")
        if time.monotonic() > deadline:
            logs = "\n---\n".join(d.log_text()[-4000:] for d in daemons)
            raise AssertionError(f"gave up after {timeout_s}s waiting for {what}; last value {got!r}\n{logs}")
        time.sleep(interval_s)


def parse_metrics(text: str) -> dict[str, float]:
    """Sample line -> value; fails on any line that is not valid exposition format."""
    out: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not exposition format: {line!r}"
        assert m.group(1) in typed, f"sample before its TYPE line: {line!r}"
        out[line.rsplit(" ", 1)[0]] = float(m.group(4))
    return out


def scrape(port: int) -> dict[str, float]:
    resp = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert resp.status_code == 200
    return parse_metrics(resp.text)


def try_scrape(port: int) -> dict[str, float] | None:
    try:
        return scrape(port)
    except httpx.HTTPError:
        return None


def metric(port: int, name: str) -> Any:
    got = try_scrape(port)
    return None if got is None else got.get(name)
