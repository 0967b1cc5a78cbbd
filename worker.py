"""`python worker.py`: one bulkcall worker (RQ worker with its scheduler, plus the reconciler).

Run as many as needed, on as many machines as needed, with the same settings (DATABASE_URL,
REDIS_URL, BULKCALL_SECRET_KEY...). Stops cleanly on SIGTERM or Ctrl+C.
"""

from __future__ import annotations

import logging
import sys

from bulkcall_core.errors import BulkCallError
from bulkcall_core.settings import get_settings
from bulkcall_core.worker import run


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return run(get_settings())
    except BulkCallError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
