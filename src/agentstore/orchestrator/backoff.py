"""When a failed task is tried again: exponential backoff with jitter, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from agentstore.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Backoff:
    """The delay before retry ``n`` (1 for the first retry) is ``first * 2**(n-1)``,
    capped at ``cap``, then stretched by a random factor of up to ``1 + jitter`` so that
    tasks failing together do not all come back at the same instant. The delay is never
    shorter than the policy's: jitter only adds."""

    first: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(minutes=10)
    jitter: float = 0.25

    def __post_init__(self) -> None:
        for name in ("first", "cap"):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value < timedelta(0):
                raise ValidationError(f"Backoff.{name} must be a timedelta of zero or more")
        if self.cap < self.first:
            raise ValidationError("Backoff.cap must not be shorter than Backoff.first")
        if isinstance(self.jitter, bool) or not isinstance(self.jitter, (int, float)):
            raise ValidationError("Backoff.jitter must be a number")
        if not 0 <= self.jitter <= 1:
            raise ValidationError("Backoff.jitter must be between 0 and 1")

    def base_delay(self, retry: int) -> timedelta:
        """The delay before retry ``retry`` without jitter: the least it will be."""
        doublings = min(max(retry, 1) - 1, 1000)  # in float seconds: no overflow
        seconds = self.first.total_seconds() * 2.0**doublings
        return min(self.cap, timedelta(seconds=min(seconds, self.cap.total_seconds())))

    def delay(self, retry: int, *, rng: random.Random | None = None) -> timedelta:
        """The delay before retry ``retry``, jitter included."""
        stretch = 1 + self.jitter * (rng or random).random()
        return self.base_delay(retry) * stretch


#: The store's policy, for tasks that have none of their own and calls that give none.
DEFAULT_BACKOFF = Backoff()
