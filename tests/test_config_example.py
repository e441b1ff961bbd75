"""config.example.toml documents every settings key and loads as valid configuration."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from screener.settings import ChainSettings, Settings, load_settings

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def _section_fields() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, field in Settings.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out[name] = set(ann.model_fields)
    out["chains.*"] = set(ChainSettings.model_fields)
    return out


def test_example_loads() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.database.url.startswith("sqlite")


def test_example_mentions_every_key() -> None:
    text = EXAMPLE.read_text()
    missing = []
    for section, keys in _section_fields().items():
        for key in keys:
            # Commented-out keys count: they document the default or an optional value.
            if not re.search(rf"^#?\s*{re.escape(key)}\s*=", text, flags=re.MULTILINE):
                missing.append(f"{section}.{key}")
    assert not missing, f"undocumented settings keys: {missing}"
