"""`python -m arctic_like`: the `arctic-like` command."""

import sys

from arctic_like.cli import run

if __name__ == "__main__":
    sys.exit(run())
