"""Commands: serve (being written)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:  # noqa: SLF001
    """Add this module's commands to the parser."""
