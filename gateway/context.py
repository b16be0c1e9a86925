"""Typed application state shared by the views (one AppKey, no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from redis.asyncio import Redis

from gateway.validate import Rules
from worker.config import Settings
from worker.store import Store


@dataclass(frozen=True, slots=True)
class Gateway:
    """Everything a request handler needs."""

    settings: Settings
    redis: Redis
    store: Store
    rules: Rules


GATEWAY = web.AppKey("gateway", Gateway)
