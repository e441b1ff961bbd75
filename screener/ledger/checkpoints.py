"""Audit checkpoints: take one from the database, append it to a JSON-lines file, check a file against the chain.

Signing and checking a signature are passed in (``sign``, ``check_signature``): the ledger does not know whose
key it is (the operator's for `screener audit checkpoint`, the daemon's for its hourly job).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from screener.ledger.audit import HEAD_ID
from screener.ledger.checkpoint_rules import (
    Checkpoint,
    CheckpointJudgement,
    checkpoint_json,
    format_at,
    judge_checkpoints,
    parse_checkpoints,
)
from screener.models.ledger import GENESIS_HASH, AuditEvent, AuditHead
from screener_base.clock import ensure_utc
from screener_base.errors import AuditError

MAX_CHECKPOINT_FILE_BYTES = 256 * 1024 * 1024


def take(
    session: Session, now: datetime, sign: Callable[[str], str] | None = None, signer: str | None = None
) -> Checkpoint:
    """The chain's head now, signed when ``sign`` is given (by ``signer``, the principal of its key)."""
    head = session.get(AuditHead, HEAD_ID)
    if head is None:
        raise AuditError("the audit head row is missing", "run `screener db upgrade`, then `screener audit verify`")
    cp = Checkpoint(head.seq, head.hash, format_at(ensure_utc(now)))
    if sign is None:
        return cp
    return Checkpoint(cp.seq, cp.head_hash, cp.at, signer, sign(cp.signed_text()))


def append(path: Path, cp: Checkpoint) -> None:
    """Add one line to the file and flush it to disk (a checkpoint that is not on disk proves nothing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(checkpoint_json(cp) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise AuditError(
            f"cannot append the checkpoint to {path}: {exc.strerror or exc}",
            "make the checkpoint file writable (its directory must exist or be creatable)",
        ) from exc


def read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_CHECKPOINT_FILE_BYTES:
            raise AuditError(f"checkpoint file {path} is larger than 256 MiB", "pass the file the daemon writes")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditError(f"cannot read checkpoint file {path}: {exc}", "pass a readable JSON-lines file") from exc


def _hash_at(session: Session) -> Callable[[int], str | None]:
    def hash_at(seq: int) -> str | None:
        if seq == 0:
            return GENESIS_HASH
        return session.exec(select(AuditEvent.hash).where(AuditEvent.seq == seq)).first()

    return hash_at


def judge(
    session: Session,
    checkpoints: list[Checkpoint],
    head_seq: int,
    check_signature: Callable[[Checkpoint], str | None] | None = None,
) -> CheckpointJudgement:
    """Checkpoints against the chain; a signed one whose signature does not verify is a problem, not a match."""
    judged = judge_checkpoints(checkpoints, _hash_at(session), head_seq)
    if check_signature is not None:
        for cp in list(judged.matched):
            if cp.signature is None:
                continue
            problem = check_signature(cp)
            if problem is not None:
                judged.matched.remove(cp)
                judged.problems.append(f"checkpoint line {cp.line} (seq {cp.seq}): its signature {problem}")
    return judged


def judge_text(
    session: Session, text: str, head_seq: int, check_signature: Callable[[Checkpoint], str | None] | None = None
) -> CheckpointJudgement:
    checkpoints, problems = parse_checkpoints(text)
    judged = judge(session, checkpoints, head_seq, check_signature)
    judged.problems[:0] = problems
    return judged
