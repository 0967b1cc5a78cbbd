"""A fake Twilio REST server for tests: `from tests.fake_twilio import FakeTwilio, Outcome`.

See `server.py` for the Python API (FakeTwilio) and `handlers.py` for what it answers.
"""

from tests.fake_twilio.lifecycle import FakeCallback
from tests.fake_twilio.resources import Account, FakeCall, Outcome
from tests.fake_twilio.server import FakeTwilio, RequestRecord, Violation

__all__ = [
    "Account",
    "FakeCall",
    "FakeCallback",
    "FakeTwilio",
    "Outcome",
    "RequestRecord",
    "Violation",
]
