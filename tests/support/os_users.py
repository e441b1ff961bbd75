"""Real OS accounts for identity tests: created with useradd, the CLI run as them with runuser.

The test process runs as root on the development and CI machines; elsewhere these tests are skipped (and
fail under CI=true, where root is part of the machine's contract). The project's venv links to a Python under
/root, which other accounts cannot execute, so the CLI runs under the system Python of the same minor version
with the venv's site-packages and the repository on PYTHONPATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = "from screener.cli import main; main()"


def require_root() -> None:
    missing = [tool for tool in ("useradd", "runuser") if shutil.which(tool) is None]
    if os.geteuid() == 0 and not missing:
        return
    why = f"needs root and useradd/runuser (euid {os.geteuid()}, missing {missing})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"identity tests {why} under CI=true")
    pytest.skip(why)


def ensure_user(name: str) -> str:
    require_root()
    if subprocess.run(["id", "-u", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    return name


def shared_dir() -> Path:
    """A directory every test account may write (pytest's own tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="screener-ids-", dir="/tmp"))
    path.chmod(0o777)
    return path


def _python() -> str:
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    return str(system) if system.exists() else sys.executable


def run_as(user: str, config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``screener --config CONFIG ARGS`` as ``user`` (runuser: a real setuid to that account)."""
    site = sysconfig.get_paths()["purelib"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SCREENER_")}
    clean.update({"PYTHONPATH": f"{REPO}:{site}", "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/tmp", **(env or {})})
    cmd = ["runuser", "-u", user, "--", _python(), "-c", CLI, "--config", str(config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=clean, cwd="/tmp", timeout=120)
