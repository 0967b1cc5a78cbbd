"""A free TCP port on loopback, for the servers tests start (web hooks, dashboard, Redis...)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1); closed again before returning."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
