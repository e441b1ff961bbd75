"""Signed decisions (``review.signing = "ssh"``): each reviewer signs the statement of their decision.

The review service builds the statement (screener.review.statements) and asks a :class:`Signing` for the
attestation it stores in the audit event: the statement, the armoured signature and the key's fingerprint. At
decision time the signature is checked at once, by ssh-keygen against the allowed-signers file for the acting
person, so a missing, forged, wrong-namespace or replayed signature refuses the decision and changes nothing.
``screener audit verify`` checks them all again later (screener.review.signed_audit), which is what catches a
decision written behind the CLI's back.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from screener.review import ssh
from screener.review.statements import check_allowed_signers, check_namespace, parse_sshsig
from screener.settings import Settings
from screener_base.errors import ConfigError, ReviewError

# statement text -> armoured signature (ssh-keygen, or a test's own signer)
Signer = Callable[[str], str]


@dataclass(frozen=True)
class Signing:
    """Off (``required`` false: nothing is signed), or sign with ``sign`` and check against ``allowed_signers``."""

    required: bool = False
    sign: Signer | None = None
    allowed_signers: Path | None = None

    def attest(self, text: str, actor: str) -> dict[str, str]:
        """The payload fields proving ``actor`` signed ``text``; {} when signing is off. ReviewError if not."""
        if not self.required:
            return {}
        if self.sign is None or self.allowed_signers is None:
            raise ConfigError("signing is on but no signer or allowed-signers file was given", "see docs/security.md")
        signature = self.sign(text)
        if not isinstance(signature, str) or not signature.strip():
            raise ReviewError(
                "the decision is not signed (review.signing = ssh requires a signature)",
                "sign it with your own key (review.signing_key_path); nothing was changed",
            )
        parsed = parse_sshsig(signature)
        check_namespace(parsed)
        problem = ssh.verify(text, signature, actor, self.allowed_signers)
        if problem is not None:
            raise ReviewError(
                f"the signature of this decision does not verify for {actor}: {problem}",
                f"sign with the key listed for {actor} in {self.allowed_signers}; nothing was changed",
            )
        return {"statement": text, "signature": signature, "signed_key": parsed.fingerprint}


NO_SIGNING = Signing()


def default_key_path() -> Path:
    """~/.ssh/id_ed25519 of the effective uid's home (from the passwd entry, not $HOME)."""
    try:
        home = Path(pwd.getpwuid(os.geteuid()).pw_dir)
    except KeyError:
        home = Path.home()
    return home / ".ssh" / "id_ed25519"


def allowed_signers(settings: Settings) -> Path:
    path = settings.review.allowed_signers_path
    if path is None:
        raise ConfigError(
            "review.signing = ssh needs review.allowed_signers_path",
            "point it at an OpenSSH allowed-signers file with each reviewer's public key (docs/security.md)",
        )
    found = Path(path).expanduser()
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"review.allowed_signers_path {found} cannot be read ({exc})",
            "point it at the OpenSSH allowed-signers file listing each reviewer's key (docs/security.md)",
        ) from exc
    check_allowed_signers(text, str(found))
    return found


def key_path(settings: Settings) -> Path:
    configured = settings.review.signing_key_path
    return Path(configured).expanduser() if configured else default_key_path()


def signer_for(settings: Settings, namespace: str) -> Signer | None:
    """Sign other texts (audit checkpoints) with this person's key in ``namespace``; None when signing is off."""
    if settings.review.signing != "ssh":
        return None
    key = key_path(settings)
    return lambda text: ssh.sign(text, key, namespace)


def signing_for(settings: Settings) -> Signing:
    """The Signing the configuration asks for; the key is the caller's own (review.signing_key_path)."""
    if settings.review.signing != "ssh":
        return NO_SIGNING
    key = key_path(settings)
    return Signing(True, lambda text: ssh.sign(text, key), allowed_signers(settings))
