"""The deposit screening application: watch chains, screen senders, credit or hold in a ledger.

Subpackages by concern, highest layer first (tests/test_architecture.py pins the order): cli, demo, daemon,
ops, decide, indexes, pipeline, review | lists, ledger, screening; below them models, db, settings, amounts.
A module imports its own folder and lower layers only; the pure ``*/rules.py`` modules and ``screening/``
may be imported from anywhere. See docs/architecture.md.
"""

__all__ = [
    "amounts",
    "cli",
    "daemon",
    "db",
    "decide",
    "demo",
    "indexes",
    "ledger",
    "lists",
    "models",
    "ops",
    "pipeline",
    "review",
    "screening",
    "settings",
]
