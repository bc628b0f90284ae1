"""Waiting for something another thread or process does, without timing it: poll until
it holds, and fail (never pass) when it has not after a generous limit."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
#: Far above any wait the tests expect: reaching it means the thing never happened.
PATIENCE = 30.0


def wait_until(check: Callable[[], T], *, what: str = "the condition") -> T:
    """``check()``'s first true value; fails the test after ``PATIENCE`` seconds."""
    deadline = time.monotonic() + PATIENCE
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {PATIENCE:.0f}s")
        time.sleep(0.01)
    return value
