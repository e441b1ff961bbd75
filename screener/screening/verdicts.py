"""Verdict and finding records: the contract between screening (which decides) and review/ledger (which act).

Pure data; JSON-serialisable so the evidence stored with a deposit can be read back and explained later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Decision(StrEnum):
    CREDIT = "CREDIT"
    HOLD = "HOLD"
    BLOCK = "BLOCK"


class Severity(StrEnum):
    INFO = "info"
    REVIEW = "review"  # HOLD
    BLOCKING = "blocking"  # BLOCK


@dataclass(frozen=True)
class Finding:
    rule_id: str  # e.g. "ofac.sdn", "mixer.direct", "mixer.withdrawal_recipient", "issuer.blacklist", "unavailable"
    severity: Severity
    party: str  # "from" | "initiator" | "-" (not about one party, e.g. list stale)
    matched_address: str | None = None
    list_version_id: int | None = None
    entity: str | None = None
    programs: tuple[str, ...] = ()
    hop_path: tuple[str, ...] = ()
    evidence_tx: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["programs"] = list(self.programs)
        data["hop_path"] = list(self.hop_path)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finding:
        return cls(
            rule_id=data["rule_id"],
            severity=Severity(data["severity"]),
            party=data["party"],
            matched_address=data.get("matched_address"),
            list_version_id=data.get("list_version_id"),
            entity=data.get("entity"),
            programs=tuple(data.get("programs") or ()),
            hop_path=tuple(data.get("hop_path") or ()),
            evidence_tx=data.get("evidence_tx"),
            detail=data.get("detail", ""),
        )


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    list_version_id: int | None = None
    decided_at: datetime | None = None

    @property
    def summary(self) -> str:
        if not self.findings:
            return "clean"
        return "; ".join(
            f"{f.rule_id} ({f.party}): {f.detail or f.matched_address or ''}".strip() for f in self.findings
        )

    def findings_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.findings]
