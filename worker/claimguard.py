"""Whether this worker's claims still stand, judged from its own heartbeat writes.

A message this worker claimed (``sending``) may be taken over by any other worker once this
worker's heartbeat key has expired, and sent again. The key expires at the latest ``lease``
after the last write of it that succeeded, counted from when that write was *sent* (Redis
cannot have set it earlier). So a worker that cannot write its heartbeat (Redis down,
read-only after a failover, out of memory, a bug) must stop submitting before then, or the
same message goes out twice. It stops with a ``margin`` to spare, which covers the time between
the check and the submit_sm reaching the wire; it goes on by itself once a write succeeds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

log = logging.getLogger("smsgw.worker")


class ClaimGuard:
    """``holds()``: may this worker claim and submit now? Told of heartbeat writes by
    ``written(sent_at)`` with ``sent_at = now()`` taken before the write was sent."""

    def __init__(self, lease_seconds: float, margin_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not 0 <= margin_seconds < lease_seconds:
            raise ValueError("the margin must be shorter than the lease")
        self._lease = lease_seconds
        self._margin = margin_seconds
        self._clock = clock
        self._expires = -math.inf  # when the heartbeat key expires at the latest
        self._stopped = False  # submits were refused after a heartbeat had been written

    def now(self) -> float:
        """The time to pass to :meth:`written` for a write about to be sent."""
        return self._clock()

    def written(self, sent_at: float) -> None:
        """A heartbeat write sent at ``sent_at`` succeeded."""
        self._expires = max(self._expires, sent_at + self._lease)

    def holds(self) -> bool:
        """True while the heartbeat key stands for at least the margin more."""
        left = self._expires - self._clock()
        if left > self._margin:
            if self._stopped:
                self._stopped = False
                log.warning("heartbeat written again: claiming and submitting again")
            return True
        if not self._stopped and self._expires > -math.inf:
            self._stopped = True
            log.error("heartbeat not written for %.1fs: claiming and submitting nothing until "
                      "it is, as other workers may take over this worker's messages",
                      self._lease - left)
        return False
