"""Run the fake Twilio on its own, for manual runs in a browser and for benchmarks.

    python -m tests.fake_twilio --port 8765 --account AC...:token:+14155550100[,+1...] \
        [--max-cps 10] [--speed 0.05] [--trial]

Prints the base URL (for TWILIO_API_BASE_URL) and serves until interrupted.
"""

from __future__ import annotations

import argparse
import signal
import threading

from tests.fake_twilio.server import DEFAULT_SPEED, FakeTwilio


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_twilio")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SID:TOKEN:+NUMBER[,+NUMBER]",
        help="an account to create (repeatable); without one, a random account is printed",
    )
    parser.add_argument("--max-cps", type=float, default=None, help="429 beyond this rate")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="seconds per step")
    parser.add_argument("--trial", action="store_true", help="make the accounts trial accounts")
    args = parser.parse_args()
    fake = FakeTwilio(speed=args.speed, max_cps=args.max_cps).start(port=args.port)
    for spec in args.account or [""]:
        sid, token, numbers = (spec.split(":") + ["", "", ""])[:3]
        account = fake.add_account(
            sid=sid or None,
            token=token or None,
            numbers=tuple(numbers.split(",")) if numbers else ("+14155550100",),
            trial=args.trial,
        )
        print(f"account {account.sid} token {account.token}", flush=True)
    print(fake.base_url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
