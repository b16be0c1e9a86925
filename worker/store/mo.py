"""Mobile-originated messages: recorded (reassembled when concatenated) and listed."""

from __future__ import annotations

import json

from worker.encoding import decode_text
from worker.store.base import StoreBase, _decode, _text, now_ms
from worker.store.keys import mo_key, mo_list_key
from worker.store.records import MoPart


class MobileOriginated(StoreBase):
    """MO messages: recording and listing."""

    async def record_mo(self, part: MoPart) -> str:
        """Record an MO message (or one part of it); its id once complete, else ''.

        The parts of a concatenated message are joined as octets, then decoded."""
        single = part.total <= 1
        payload = {"id": part.api_id, "channel": part.channel, "source": part.source,
                   "destination": part.destination, "ref": part.ref, "total": part.total,
                   "seq": part.seq, "dc": part.data_coding,
                   "hex": "" if single else part.body.hex(),
                   "text": decode_text(part.body, part.data_coding) if single else "",
                   "default_account": part.default_account}
        joined = ""
        while True:  # a second round trip for the part that completes a message, rarely more
            answer = _text(await self._durably(self._mo, args=[
                now_ms(), self._retention, json.dumps(payload, ensure_ascii=False), joined]))
            if not answer.startswith("?"):
                return answer
            coding, _, joined = answer[1:].partition(":")
            payload["text"] = decode_text(bytes.fromhex(joined), int(coding))

    async def mo_messages(self, channel: str, limit: int) -> list[dict[str, str]]:
        """The newest MO messages of a channel."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.lrange(mo_list_key(channel), 0, limit - 1)
        (ids,) = await pipe.execute()
        for mo_id in ids:
            pipe.hgetall(mo_key(mo_id.decode()))
        return [_decode(row) for row in await pipe.execute() if row]
