"""`python -m bulkcall_core ...`: the command line, a thin caller of the core.

Each sub-module registers its commands; every BulkCallError becomes one line on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bulkcall_core.errors import BulkCallError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own usage errors: one line, exit 2, like every other input error.
        sys.stderr.write(f"error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    from bulkcall_core.cli import campaign, channel, plan, serve

    parser = _Parser(prog="python -m bulkcall_core", description="Bulk voice calls via Twilio.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in (plan, channel, campaign, serve):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except BulkCallError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
