"""Pure: audit checkpoints, the chain's head kept outside the database, and what a set of them says.

The hash chain proves no event in the middle was edited, but whoever can write the database can delete the
newest events and point the head at an older one: the shorter chain verifies. A checkpoint ``{seq, head_hash,
at}`` written elsewhere (a file, a webhook, a ticket) pins the chain as it was: later, the event at ``seq`` must
still have that hash. A checkpoint may carry an SSH signature of its canonical line (namespace
``screener-checkpoint``) by ``signer``, so a checkpoint file cannot be rewritten to match either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

CHECKPOINT_NAMESPACE = "screener-checkpoint"
MAX_CHECKPOINT_LINES = 1_000_000  # a file of hourly checkpoints holds ~114 years
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    at: str  # ISO 8601, UTC
    signer: str | None = None
    signature: str | None = None
    line: int = 0  # where it was read from (0: not read from a file)

    def signed_text(self) -> str:
        """The exact text a checkpoint's signature covers."""
        return canonical_checkpoint(self.seq, self.head_hash, self.at)


def canonical_checkpoint(seq: int, head_hash: str, at: str) -> str:
    return json.dumps({"at": at, "head_hash": head_hash, "seq": seq}, sort_keys=True, separators=(",", ":"))


def checkpoint_json(cp: Checkpoint) -> str:
    """One JSON line: the signed fields, plus signer and signature when signed."""
    body: dict[str, Any] = {"seq": cp.seq, "head_hash": cp.head_hash, "at": cp.at}
    if cp.signature is not None:
        body.update(signer=cp.signer, signature=cp.signature)
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def format_at(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _parse_one(raw: str, number: int) -> Checkpoint:
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    seq, head, at = body.get("seq"), body.get("head_hash"), body.get("at")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError("seq is not a whole number >= 0")
    if not isinstance(head, str) or len(head) != 64 or not set(head) <= _HEX:
        raise ValueError("head_hash is not 64 lowercase hex digits")
    if not isinstance(at, str):
        raise ValueError("at is not a string")
    signer, signature = body.get("signer"), body.get("signature")
    if (signature is None) != (signer is None) or not all(isinstance(v, str | None) for v in (signer, signature)):
        raise ValueError("signer and signature come together, as strings")
    return Checkpoint(seq, head, at, signer, signature, number)


def parse_checkpoints(text: str) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints of a JSON-lines file, and one problem per line that is not one."""
    found: list[Checkpoint] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines()[:MAX_CHECKPOINT_LINES], 1):
        if not raw.strip():
            continue
        try:
            found.append(_parse_one(raw, number))
        except (ValueError, TypeError) as exc:
            problems.append(f"checkpoint line {number} is not a checkpoint ({exc})")
    return found, problems


@dataclass
class CheckpointJudgement:
    matched: list[Checkpoint] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def last_good(self) -> Checkpoint | None:
        return max(self.matched, key=lambda c: c.seq) if self.matched else None


def judge_checkpoints(
    checkpoints: list[Checkpoint], hash_at: Callable[[int], str | None], head_seq: int
) -> CheckpointJudgement:
    """Each checkpoint against the chain: ``hash_at(seq)`` is the stored hash of event ``seq`` (None: no such
    event; seq 0 is the genesis). A checkpoint past the head means the tail was cut; a different hash, that the
    chain up to it was rewritten."""
    judged = CheckpointJudgement()
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        where = f"checkpoint line {cp.line} (seq {cp.seq}, {cp.at})" if cp.line else f"checkpoint seq {cp.seq}"
        if cp.seq > head_seq:
            judged.problems.append(
                f"{where}: the chain now ends at seq {head_seq}: its newest events were deleted (truncated)"
            )
            continue
        stored = hash_at(cp.seq)
        if stored != cp.head_hash:
            judged.problems.append(f"{where}: event {cp.seq} no longer has the hash recorded then (rewritten)")
            continue
        judged.matched.append(cp)
    return judged
