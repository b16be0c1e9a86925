"""A channel's shared sending resources: its TPS token bucket and concatenation refs."""

from __future__ import annotations

from worker.store.base import StoreBase, now_ms
from worker.store.keys import msg_key, ref_key, tps_key


class Channels(StoreBase):
    """A channel's shared rate and concatenation references."""

    async def take_tokens(
        self, channel: str, rate: float, burst: int, want: int
    ) -> tuple[int, int]:
        """Up to ``want`` tokens of a channel's shared rate: (granted, ms until the next)."""
        granted, wait = await self._take_tokens(keys=[tps_key(channel)],
                                                args=[now_ms(), rate, burst, want])
        return int(granted), int(wait)

    async def allocate_ref(
        self, api_id: str, channel: str, to: str, *, modulo: int, hold_ms: int, start: int
    ) -> int | None:
        """A concatenation reference no message to ``to`` holds, or None. A message holds
        it until every part is answered, a retry included (``hold_ms`` if nothing frees it)."""
        ref = await self._alloc_ref(keys=[ref_key(channel, to), msg_key(api_id)],
                                    args=[now_ms(), modulo, hold_ms, start])
        return None if int(ref) < 0 else int(ref)
