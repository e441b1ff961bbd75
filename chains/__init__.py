"""Talking to blockchains: token registry, JSON-RPC client, log scanning, Transfer decoding, mixer and
issuer-blacklist events. No database, no policy.

May import: screener_base only (never screener or sanctions_lists).
"""

__all__ = [
    "blacklists", "budget", "codec", "mixers", "multisig", "registry", "rpc", "rpc_errors", "rpc_support",
    "scanning", "transfers",
]  # fmt: skip
