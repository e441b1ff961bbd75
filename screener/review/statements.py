"""Pure: the statement a reviewer signs for a decision, and what an OpenSSH signature (SSHSIG) says about itself.

A statement is the canonical JSON (sorted keys, no spaces, UTF-8) of the decision's facts: what was decided
(action), about which hold or flag, of which deposit, amount and asset, on which verdict and findings (their
digest), why, by whom and when; an approval also names the digest of the request it approves, so it cannot be
moved onto another request. The exact text is stored in the audit event next to its signature: an auditor
verifies it with ``ssh-keygen -Y verify -n screener-review`` alone, and ``screener audit verify`` also checks
that it says what the event says.

The signature's own blob names its namespace and public key, read here (PROTOCOL.sshsig) so a four-eyes pair
can be told apart by key and a wrong namespace named as such; whether the signature is valid is ssh-keygen's
to say (screener.review.ssh).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from screener_base.errors import ReviewError

NAMESPACE = "screener-review"
STATEMENT_VERSION = 1
# The audit event kinds a person's decision is recorded under, and the action each one signs.
SIGNED_ACTIONS = {"hold.release_requested": "request", "hold.rejected": "reject", "flag.resolved": "resolve-flag"}
# hold.released is "release" (one reviewer) or "approve" (the second of four-eyes); by the system it is unsigned.
RELEASED = "hold.released"

_ARMOR_BEGIN, _ARMOR_END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"
_MAGIC = b"SSHSIG"
MAX_SIGNATURE_CHARS = 16_384  # an RSA-16384 signature armoured is well under this


def canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def findings_digest(findings: Any) -> str:
    """The digest of the findings as stored (a list of JSON objects); what the reviewer saw when deciding."""
    return digest(canonical({"findings": findings}))


def statement(
    action: str, subject: str, facts: dict[str, Any], reason: str, actor: str, at_iso: str, **extra: Any
) -> str:
    """The canonical text signed for one decision. ``facts``: hold, deposit, amount, asset, verdict, findings."""
    body = {
        "v": STATEMENT_VERSION,
        "namespace": NAMESPACE,
        "action": action,
        "subject": subject,
        **facts,
        "reason": reason,
        "actor": actor,
        "at": at_iso,
        **extra,
    }
    return canonical(body)


def parse_statement(text: str) -> dict[str, Any]:
    """The statement's fields; ReviewError when it is not a statement of this version."""
    try:
        body = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ReviewError(f"the signed statement is not JSON ({exc})", "the event was not written by screener") from exc
    if not isinstance(body, dict) or body.get("v") != STATEMENT_VERSION or body.get("namespace") != NAMESPACE:
        raise ReviewError("the signed statement is not a screener-review statement", "the event was altered")
    if canonical(body) != text:
        raise ReviewError("the signed statement is not in canonical form", "the event was altered")
    return body


@dataclass(frozen=True)
class SshSig:
    namespace: str
    key_type: str
    fingerprint: str  # "SHA256:..." as ssh-keygen -l prints it
    blob_sha256: bytes  # of the decoded signature: the same signature however its armour is wrapped


def _take(blob: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(blob):
        raise ValueError("truncated")
    size = int.from_bytes(blob[pos : pos + 4], "big")
    end = pos + 4 + size
    if end > len(blob):
        raise ValueError("truncated")
    return blob[pos + 4 : end], end


def _unarmor(armored: str) -> bytes:
    text = armored.strip()
    if len(text) > MAX_SIGNATURE_CHARS or not (text.startswith(_ARMOR_BEGIN) and text.endswith(_ARMOR_END)):
        raise ValueError("not an armoured SSH signature")
    body = "".join(text[len(_ARMOR_BEGIN) : -len(_ARMOR_END)].split())
    return base64.b64decode(body, validate=True)


def parse_sshsig(armored: str) -> SshSig:
    """Namespace and key of an armoured OpenSSH signature; ReviewError when it is not one."""
    try:
        blob = _unarmor(armored)
        if not blob.startswith(_MAGIC):
            raise ValueError("no SSHSIG magic")
        pos = len(_MAGIC) + 4  # the version, uint32
        public_key, pos = _take(blob, pos)
        namespace, pos = _take(blob, pos)
        key_type, _ = _take(public_key, 0)
        return SshSig(
            namespace=namespace.decode("utf-8"),
            key_type=key_type.decode("ascii"),
            fingerprint="SHA256:" + base64.b64encode(hashlib.sha256(public_key).digest()).decode().rstrip("="),
            blob_sha256=hashlib.sha256(blob).digest(),
        )
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ReviewError(
            f"the signature is not an OpenSSH signature ({exc})",
            f"sign with `ssh-keygen -Y sign -n {NAMESPACE}`; nothing was changed",
        ) from exc


def check_namespace(sig: SshSig) -> None:
    if sig.namespace != NAMESPACE:
        raise ReviewError(
            f"the signature is for namespace {sig.namespace!r}, not {NAMESPACE!r}",
            f"sign the decision with `ssh-keygen -Y sign -n {NAMESPACE}`; nothing was changed",
        )


def check_allowed_signers(text: str, source: str) -> None:
    """Each line of an allowed-signers file names its principals exactly: OpenSSH reads them as patterns, so a
    ``*`` (or ``?``, ``!``) would let one key sign for every reviewer, or for a name invented later."""
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if any(c in fields[0] for c in "*?!"):
            raise ReviewError(
                f"{source} line {number}: principals {fields[0]!r} are a pattern, not names",
                "list each reviewer by their exact login name (comma-separated names are fine)",
            )
        if not any(_is_key(kind, blob) for kind, blob in itertools.pairwise(fields[1:])):
            raise ReviewError(
                f"{source} line {number} is not an allowed-signers entry (no public key on it)",
                'write `NAME namespaces="screener-review" KEYTYPE BASE64`, as in the .pub file (man ssh-keygen)',
            )


def _is_key(kind: str, blob: str) -> bool:
    """``kind blob`` is an OpenSSH public key: the blob decodes and names the same key type."""
    if not (kind.startswith(("ssh-", "ecdsa-", "sk-")) and blob.startswith("AAAA")):
        return False
    try:
        named, _ = _take(base64.b64decode(blob, validate=True), 0)
    except (ValueError, binascii.Error):
        return False
    return named == kind.encode()


def check_two_keys(request_key: str | None, approval_key: str, label: str) -> None:
    """Four-eyes with signatures: the approval's key must not be the request's (one key is one person)."""
    if request_key is None:
        raise ReviewError(
            f"the release request of hold {label} is not signed (it was made before review.signing was on)",
            f"the requester withdraws it (`screener holds withdraw {label}`) and releases it again, signed; "
            "nothing was changed",
        )
    if request_key == approval_key:
        raise ReviewError(
            f"four-eyes: the approval of hold {label} is signed with the same key as its request ({approval_key})",
            "a second reviewer approves with their own key; nothing was changed",
        )
