"""Limits on what one charger connection may cost: frame rate and flooding.

Handshake spam (new pool entries per address, pool size) and password brute force are
decided by the database, across processes: `stations.services.sessions` and
`stations.services.refusals`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

# A flooding charger is disconnected when this many frames were refused within this window.
STRIKE_WINDOW = 60.0


class TokenBucket:
    """`burst` tokens, refilled at `rate` per second; each frame takes one."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        now = self._clock()
        self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate)
        self._last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class FrameRateLimit:
    """A connection's frame budget, and when refusals add up to a flood.

    `allow()` is False for a frame over the rate; `flooding` turns True once `strikes`
    frames were refused within STRIKE_WINDOW seconds: the connection is then closed. The
    memory is bounded: the strike times are a deque of at most `strikes` entries.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        strikes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
        self._clock = clock
        self._strikes: deque[float] = deque(maxlen=max(1, strikes))
        self.refused = 0
        self.flooding = False

    def allow(self) -> bool:
        if self.bucket.take():
            return True
        now = self._clock()
        self.refused += 1
        self._strikes.append(now)
        if len(self._strikes) == self._strikes.maxlen and now - self._strikes[0] <= STRIKE_WINDOW:
            self.flooding = True
        return False
