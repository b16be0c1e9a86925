"""API keys: records stored by the hash of their secret, authentication, rotation."""

from __future__ import annotations

import json
from collections.abc import Mapping

from worker.store.base import StoreBase, _decode, _pairs, _text, now_ms
from worker.store.keys import api_key_key
from worker.store.records import KeyOp, KeyRow


class ApiKeys(StoreBase):
    """API key records and their operations."""

    async def put_api_key(self, secret_hash: str, fields: Mapping[str, str]) -> None:
        """Create or replace an API key record."""
        await self._redis.hset(api_key_key(secret_hash), mapping=dict(fields))  # type: ignore[misc]

    async def get_api_key(self, secret_hash: str) -> dict[str, str] | None:
        """An API key record by the hash of its secret, or None."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(api_key_key(secret_hash))
        (row,) = await pipe.execute()
        return _decode(row) if row else None

    async def authenticate_key(self, secret_hash: str, *, touch_every_ms: int) -> KeyRow | None:
        """A key record, its account's children (Partner keys) and Redis' clock, in one round
        trip. Records last-used at most once per ``touch_every_ms``, inside the same script."""
        raw = await self._key_scripts.auth(keys=[api_key_key(secret_hash)], args=[touch_every_ms])
        if not raw:
            return None
        flat, children, now, parent = raw
        return KeyRow(fields=_pairs(flat), children=frozenset(_text(c) for c in children),
                      now_ms=int(now), parent=_text(parent))

    async def create_api_key(
        self, secret_hash: str, fields: Mapping[str, str], *, parent: str = "", owner: str = ""
    ) -> str:
        """Store a new key record and its account; 'ok', 'exists' or 'forbidden'.

        ``parent`` (if set) becomes the account's parent. With ``owner`` set, the account must
        be new or already a child of ``owner``, and becomes one (a Partner creating a key).
        """
        return _text(await self._key_scripts.create(
            args=[secret_hash, json.dumps(dict(fields)), parent, owner, now_ms()]))

    async def api_keys(self, key_id: str = "") -> list[dict[str, str]]:
        """Every key record (or the one with ``key_id``) with its account's ``parent``."""
        rows = await self._key_scripts.listing(args=[key_id])
        return [_pairs(row) for row in rows]

    async def change_api_key(self, key_id: str, op: KeyOp, value: str = "") -> bool:
        """Enable, disable, delete, rotate (to the new hash ``value``) a key, or set its
        senders (``value``, stored form: '' none); False if unknown."""
        return bool(await self._key_scripts.change(args=[op, key_id, value, now_ms()]))
