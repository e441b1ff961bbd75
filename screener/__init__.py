"""The deposit screening application (see docs/architecture.md)."""
