"""`screener demo`: the whole product on a local anvil devnet with SQLite and the bundled list.

devnet/ deploys the test tokens and mixer pool (tests reuse it). May import anything except screener.cli.
"""

__all__ = ["devnet", "run", "world"]
