"""Commands: `serve` (the whole product) and `webhooks` (only the web hooks server)."""

from __future__ import annotations

import argparse

from bulkcall_core import launcher
from bulkcall_core.settings import get_settings


def register(commands: argparse._SubParsersAction) -> None:  # noqa: SLF001
    """Add this module's commands to the parser."""
    serve = commands.add_parser(
        "serve",
        help="start the dashboard, the workers and the web hooks (Ctrl-C stops them all)",
        description="Migrate the database, start the embedded Valkey when REDIS_URL is unset, "
        "the web hooks server (WEBHOOK_HOST:WEBHOOK_PORT), the workers and the dashboard.",
    )
    serve.add_argument(
        "--port", type=int, default=launcher.DEFAULT_DASHBOARD_PORT, help="dashboard port"
    )
    serve.add_argument(
        "--address",
        help="dashboard address to listen on (default: every one when DASHBOARD_PASSWORD or "
        "an OIDC login is configured, else 127.0.0.1 only)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=launcher.DEFAULT_WORKERS,
        help="worker processes: how many campaigns run at once, ~0.2 GB each "
        f"(default: {launcher.DEFAULT_WORKERS})",
    )
    serve.add_argument(
        "--no-worker", action="store_true", help="start no worker (run `python worker.py` apart)"
    )
    serve.add_argument(
        "--no-dashboard", action="store_true", help="start no dashboard (web hooks and worker)"
    )
    serve.set_defaults(run=_run_serve)

    hooks = commands.add_parser(
        "webhooks",
        help="run only the web hooks server (audio files and Twilio callbacks)",
        description="Serve recordings and Twilio's status callbacks on WEBHOOK_HOST:WEBHOOK_PORT; "
        "PUBLIC_BASE_URL must reach it from the internet.",
    )
    hooks.set_defaults(run=_run_webhooks)


def _run_serve(args: argparse.Namespace) -> int:
    return launcher.serve(
        get_settings(),
        port=args.port,
        address=args.address,
        workers=0 if args.no_worker else args.workers,
        dashboard=not args.no_dashboard,
    )


def _run_webhooks(_args: argparse.Namespace) -> int:
    from bulkcall_core import webhooks  # imports uvicorn and Starlette only for this command

    webhooks.serve(get_settings())
    return 0
