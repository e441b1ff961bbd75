"""SQLModel tables, one module per area; importing this package registers them all on the metadata.

Each area owns its module and its Alembic revision (screener/migrations/versions/):
deposits (0001), ledger+audit+review (0002), lists (0003), chain (0004), screening (0005), daemon (0006).
"""

from screener.models import chain, daemon, deposits, ledger, lists, screening

__all__ = ["chain", "daemon", "deposits", "ledger", "lists", "screening"]
