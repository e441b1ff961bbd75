"""The one URL redactor: RPC endpoint labels, errors, logs, metrics, status and stored counters all use it.

Secrets in URLs sit anywhere after the host: a path segment (``https://x.infura.io/v3/<key>``, even a
short ``https://rpc.example/<key>``), the userinfo (``https://user:<key>@host``), the query
(``?apikey=<key>``) or a webhook token (``https://hooks.slack.com/services/T/B/<token>``). No rule can tell a
key from a harmless segment, so a URL is shown as ``scheme://host[:port]`` only, with ``/***`` when anything
followed the host. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, urlsplit

REDACTED = "***"
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
# Trailing punctuation that ends a sentence rather than the URL ("see https://x.example/key.").
_TRAILING = ".,;:!?)]}"
# Parts of a configured URL scrubbed from free text even where they appear without the URL around them.
_MIN_SECRET_CHARS = 6


def redact_url(url: str) -> str:
    """``scheme://host[:port]``, plus ``/***`` when a path, query or fragment followed; userinfo always dropped.

    Anything that does not parse as ``scheme://host`` becomes ``***``.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    tail = f"/{REDACTED}" if parts.path not in ("", "/") or parts.query or parts.fragment else ""
    return f"{parts.scheme.lower()}://{netloc}{tail}"


def endpoint_labels(urls: Sequence[str]) -> list[str]:
    """One display label per URL: ``redact_url(url)``, plus `` #<n>`` (1-based position) where labels collide.

    Two endpoints on one host (``https://rpc.example/key1``, ``https://rpc.example/key2``) would otherwise share
    a label, and their counters in metrics and status would be merged.
    """
    redacted = [redact_url(u) for u in urls]
    seen = Counter(redacted)
    return [f"{r} #{i}" if seen[r] > 1 else r for i, r in enumerate(redacted, start=1)]


def _redact_match(match: re.Match[str]) -> str:
    text = match.group(0)
    stripped = text.rstrip(_TRAILING)
    return redact_url(stripped) + text[len(stripped) :]


def _secret_parts(url: str) -> list[str]:
    """Pieces of a configured URL that may show up in an error text on their own (e.g. ``POST /v3/<key>``)."""
    try:
        parts = urlsplit(url.strip())
        pieces = [parts.netloc.rpartition("@")[0], parts.password or "", parts.query, parts.fragment]
        if parts.path not in ("", "/"):
            pieces.append(parts.path)
            pieces += [seg for seg in parts.path.split("/") if not seg.isalpha()]
        pieces += [value for _key, value in parse_qsl(parts.query, keep_blank_values=True)]
    except ValueError:
        return []
    return [p for p in pieces if len(p) >= _MIN_SECRET_CHARS]


def redact_text(text: str, urls: Iterable[str] = ()) -> str:
    """``text`` with every URL in it redacted, and the secret parts of the configured ``urls`` masked too."""
    known = sorted({u for u in urls if u}, key=len, reverse=True)
    for url in known:
        text = text.replace(url, redact_url(url))
    text = _URL.sub(_redact_match, text)
    secrets = sorted({p for url in known for p in _secret_parts(url)}, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text
