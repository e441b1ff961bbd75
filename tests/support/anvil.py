"""Tests use the same anvil launcher as `screener demo` (a real node from the npm package)."""

from screener.demo.devnet.anvil import Anvil, anvil_binary, free_port, run_anvil

__all__ = ["Anvil", "anvil_binary", "free_port", "run_anvil"]
