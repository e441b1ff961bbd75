"""Pure index rules: the index kinds and their lookback windows. No I/O."""

from __future__ import annotations

import math
from enum import StrEnum

from screener.settings import Settings


class IndexKind(StrEnum):
    MIXER = "mixer"
    BLACKLIST = "blacklist"


def lookback_days(settings: Settings, kind: str) -> int:
    sc = settings.screening
    return sc.mixer_lookback_days if kind == IndexKind.MIXER else sc.blacklist_lookback_days


def lookback_blocks(settings: Settings, kind: str, block_time_s: float) -> int:
    """The lookback window of ``kind`` in blocks of a chain with ``block_time_s`` blocks."""
    return math.ceil(lookback_days(settings, kind) * 86_400 / block_time_s)
