"""The daemon's audit checkpoint: the chain's head, appended to audit.checkpoint_path and sent as an alert.

Whoever receives the webhook (a chat channel, a log store) then holds a copy of the head the database cannot
rewrite; `screener audit verify --checkpoints FILE` compares a file of them with the chain. Signed with the
daemon's own key when audit.checkpoint_key_path is set (its principal: the daemon's login, as resolved for
every actor).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from screener.db import session_scope
from screener.ledger import checkpoints as cps
from screener.ledger.checkpoint_rules import CHECKPOINT_NAMESPACE, Checkpoint, checkpoint_json
from screener.ops.alerts import enqueue
from screener.ops.outbox_rules import AlertKind
from screener.review import ssh
from screener.review.identity import resolve_actor
from screener.settings import Settings


def _signer(engine: Engine, settings: Settings) -> tuple[Callable[[str], str] | None, str | None]:
    key = settings.audit.checkpoint_key_path
    if not key:
        return None, None
    path = Path(key).expanduser()
    return (lambda text: ssh.sign(text, path, CHECKPOINT_NAMESPACE)), resolve_actor(engine, settings).name


def write_checkpoint(engine: Engine, settings: Settings, now: datetime, last_seq: int | None) -> Checkpoint | None:
    """Take, keep and send one checkpoint; None when the chain has not moved since ``last_seq``."""
    sign, signer = _signer(engine, settings)
    with session_scope(engine) as s:
        cp = cps.take(s, now, sign, signer)
        if cp.seq == last_seq:
            return None
        text = f"audit checkpoint: seq {cp.seq}, head {cp.head_hash}"
        payload = {"checkpoint": checkpoint_json(cp)}
        enqueue(s, AlertKind.AUDIT_CHECKPOINT, f"{cp.seq}:{cp.head_hash[:16]}", text, now, payload)
    if settings.audit.checkpoint_path:
        cps.append(Path(settings.audit.checkpoint_path).expanduser(), cp)
    return cp
