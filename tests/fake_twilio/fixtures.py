"""pytest fixtures around the fake Twilio, for any test module to import.

from tests.fake_twilio.fixtures import fake_twilio  # noqa: F401 (fixture)

def test_x(fake_twilio): ...
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_twilio.server import FakeTwilio


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """A running fake Twilio (no accounts yet: add them with `add_account`)."""
    with FakeTwilio() as fake:
        yield fake
