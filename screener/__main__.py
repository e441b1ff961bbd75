"""`python -m screener` runs the CLI (same as the `screener` entry point)."""

from screener.cli import main

if __name__ == "__main__":
    main()
