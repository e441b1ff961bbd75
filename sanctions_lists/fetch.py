"""Get a list document from a URL or a local file into a private temporary copy, with its sha256.

Downloads stream to disk (never whole into memory), enforce a byte limit while streaming (also on the
decoded body, so a gzip bomb stops at the limit), and retry only transient failures: timeouts, a dropped
connection, 429 and 5xx. A 404 or 403 is not going to fix itself and fails at once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from screener_base.errors import ListError

CHUNK_BYTES = 1 << 20
USER_AGENT = "deposit-screener (sanctions list refresh)"
# A single read may stall up to timeout_s; a whole attempt may take this many times longer.
ATTEMPT_DEADLINE_FACTOR = 10
RETRY_WAIT_CAP_FACTOR = 30


@dataclass(frozen=True)
class Fetched:
    source: str
    path: Path  # a private copy, removed when the fetch context ends
    sha256: str
    size_bytes: int
    attempts: int = 1


class _Transient(ListError):
    """A failure worth another attempt; only this subclass is retried, so permanent ListErrors are not."""


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _copy_limited(read: Any, out: IO[bytes], max_bytes: int, deadline: float, source: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in read:
        size += len(chunk)
        if size > max_bytes:
            raise ListError(f"{source} is larger than lists.max_download_bytes={max_bytes}", "raise the limit")
        if time.monotonic() > deadline:
            raise _Transient(f"{source} took longer than the attempt deadline")
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest(), size


def _download_once(client: Any, url: str, out: IO[bytes], max_bytes: int, deadline_s: float) -> tuple[str, int]:
    import httpx  # lazy: a refresh from a local file, and the CLI's start-up, need no HTTP client

    out.seek(0)
    out.truncate()
    try:
        with client.stream("GET", url) as resp:
            if resp.status_code == 429 or resp.status_code >= 500:
                raise _Transient(f"HTTP {resp.status_code}")
            if resp.status_code != 200:
                raise ListError(f"{url} answered HTTP {resp.status_code}", "check lists.source_url")
            declared = resp.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ListError(
                    f"{url} announces {declared} bytes, larger than lists.max_download_bytes={max_bytes}",
                    "raise the limit",
                )
            deadline = time.monotonic() + deadline_s
            # Unbuffered: each network read is checked against the deadline, so a slow drip cannot hide.
            return _copy_limited(resp.iter_bytes(), out, max_bytes, deadline, url)
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from exc


def _download(
    url: str, out: IO[bytes], *, timeout_s: float, max_bytes: int, max_attempts: int, retry_wait_s: float
) -> tuple[str, int, int]:
    import httpx  # lazy: a refresh from a local file, and the CLI's start-up, need no HTTP client
    from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential  # lazy

    retrying = Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=wait_exponential(multiplier=retry_wait_s, max=retry_wait_s * RETRY_WAIT_CAP_FACTOR),
        retry=retry_if_exception_type(_Transient),
    )
    headers = {"User-Agent": USER_AGENT}
    with httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers, follow_redirects=True) as client:
        try:
            for attempt in retrying:
                with attempt:
                    sha, size = _download_once(client, url, out, max_bytes, timeout_s * ATTEMPT_DEADLINE_FACTOR)
                    return sha, size, attempt.retry_state.attempt_number
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise ListError(
                f"download of {url} failed after {max_attempts} attempts: {last}",
                "the active list stays in force; the next refresh will try again",
            ) from None
    raise ListError(f"download of {url} made no attempt", "set lists.max_attempts >= 1")  # pragma: no cover


def _local_path(source: str) -> Path:
    if source.startswith("file://"):
        return Path(unquote(urlparse(source).path))
    return Path(source)


def _copy_file(path: Path, out: IO[bytes], max_bytes: int) -> tuple[str, int]:
    try:
        with path.open("rb") as fh:
            chunks = iter(lambda: fh.read(CHUNK_BYTES), b"")
            return _copy_limited(chunks, out, max_bytes, float("inf"), str(path))
    except OSError as exc:
        raise ListError(f"cannot read list file {path}: {exc.strerror or exc}", "check the path") from None


@contextmanager
def fetch(
    source: str,
    *,
    timeout_s: float,
    max_bytes: int,
    max_attempts: int,
    retry_wait_s: float,
) -> Iterator[Fetched]:
    """Yield a private copy of ``source`` (URL or file path) with its sha256; the copy is removed after."""
    fd, name = tempfile.mkstemp(prefix="screener-list-")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w+b") as out:
            if is_url(source):
                sha, size, attempts = _download(
                    source,
                    out,
                    timeout_s=timeout_s,
                    max_bytes=max_bytes,
                    max_attempts=max_attempts,
                    retry_wait_s=retry_wait_s,
                )
            else:
                (sha, size), attempts = _copy_file(_local_path(source), out, max_bytes), 1
        yield Fetched(source=source, path=tmp, sha256=sha, size_bytes=size, attempts=attempts)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
