"""Progress reports for long reads (the dashboard's progress bar)."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[float], None]


class Progress:
    """Calls the caller's callback, on the caller's thread, with fractions that only go up."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self._last = -1.0

    def __call__(self, fraction: float) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if self._callback is not None and fraction > self._last:
            self._last = fraction
            self._callback(fraction)
