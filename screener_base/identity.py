"""Who runs this process, as the kernel authenticated it: the account of the effective uid.

Never the environment: ``USER``, ``LOGNAME`` (what ``getpass.getuser`` reads first) and ``SCREENER_OPERATOR``
are whatever the caller sets, so they cannot tell one person from another.
"""

from __future__ import annotations

import os
import pwd


def os_account() -> str:
    """The effective uid's login name; ``uid:N`` for a uid without a passwd entry (a container)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"
