"""OpenSSH's ssh-keygen as the signer and verifier of decisions (``ssh-keygen -Y sign`` / ``-Y verify``).

ssh-keygen is run, not reimplemented: the auditor verifies with the same tool, and the reviewer's key stays in
their own file or agent (``-f`` names a public key whose private half the agent holds). Every run has a timeout;
data goes through stdin and the signature through a private temporary file.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

from screener.review.statements import NAMESPACE
from screener_base.clock import ensure_utc
from screener_base.errors import ConfigError, ReviewError

SIGN_TIMEOUT_S = 60.0  # an agent may ask the person to confirm
VERIFY_TIMEOUT_S = 15.0


def ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise ConfigError(
            "review.signing = ssh needs ssh-keygen, which is not installed",
            "install OpenSSH's client (Debian: apt-get install openssh-client)",
        )
    return found


def sign(data: str, key_path: Path, namespace: str = NAMESPACE) -> str:
    """The armoured signature of ``data`` by the key at ``key_path`` (a private key, or a public one in the agent)."""
    if not key_path.exists():
        raise ReviewError(
            f"no signing key at {key_path}: a decision must be signed (review.signing = ssh)",
            "set review.signing_key_path (or SCREENER_REVIEW__SIGNING_KEY_PATH) to your own key; nothing was changed",
        )
    cmd = [ssh_keygen(), "-q", "-Y", "sign", "-n", namespace, "-f", str(key_path)]
    try:
        res = subprocess.run(cmd, input=data.encode("utf-8"), capture_output=True, timeout=SIGN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ReviewError(
            f"ssh-keygen did not sign within {SIGN_TIMEOUT_S:.0f} s", "check your ssh-agent; nothing was changed"
        ) from exc
    if res.returncode != 0:
        said = res.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ReviewError(
            f"ssh-keygen could not sign with {key_path}: {said[-1] if said else f'exit {res.returncode}'}",
            "check the key (and its passphrase or agent); nothing was changed",
        )
    return res.stdout.decode("ascii", "replace")


def verify(
    data: str,
    signature: str,
    principal: str,
    allowed_signers: Path,
    *,
    at: datetime | None = None,
    namespace: str = NAMESPACE,
) -> str | None:
    """None when ssh-keygen accepts ``signature`` of ``data`` by ``principal``; else what it said.

    ``at``: judge the key's validity (valid-after/valid-before in the allowed-signers file) at the time of the
    decision, so a key retired since still verifies what it signed while it was valid.
    """
    if not allowed_signers.is_file():
        raise ConfigError(
            f"review.allowed_signers_path {allowed_signers} is not a file",
            "point it at the OpenSSH allowed-signers file listing each reviewer's key (docs/security.md)",
        )
    with tempfile.TemporaryDirectory(prefix="screener-sig-") as tmp:
        sig_path = Path(tmp) / "decision.sig"
        sig_path.write_text(signature, encoding="ascii", errors="replace")
        cmd = [ssh_keygen(), "-Y", "verify", "-f", str(allowed_signers), "-I", principal, "-n", namespace]
        if at is not None:
            cmd.append("-Overify-time=" + ensure_utc(at).strftime("%Y%m%d%H%M%SZ"))
        try:
            res = subprocess.run(
                [*cmd, "-s", str(sig_path)],
                input=data.encode("utf-8"),
                capture_output=True,
                timeout=VERIFY_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"ssh-keygen did not answer within {VERIFY_TIMEOUT_S:.0f} s"
    if res.returncode == 0:
        return None
    said = (res.stderr or res.stdout).decode("utf-8", "replace").strip().splitlines()
    return said[-1] if said else f"ssh-keygen exit {res.returncode}"
