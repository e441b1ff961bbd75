"""Local devnet tooling shared by `screener demo` and the tests: anvil process, test contracts."""

__all__ = ["anvil", "deploy", "mixer"]
