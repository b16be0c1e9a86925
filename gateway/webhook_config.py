"""Accounts' webhook settings: URL rules and the operations the admin API and the CLI share.

A URL must be http(s) with a host, carry no credentials, and must not point at this gateway:
not at its own origin (as the caller reached it, or as configured), and on no host at a path of
its admin API (after decoding and resolving '.' and '..' segments, as the HTTP client does),
so a webhook can never be turned against the gateway's own admin endpoints.
The delivery process never follows redirects, so a redirect cannot get around this either.
Unless ``[webhooks] allow_private_networks`` is on, a host that is an IP literal must be a
public address (worker/netguard.py). Names are not resolved here (their answers can change):
the delivery process checks every address it connects to.
"""

from __future__ import annotations

import posixpath
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gateway.errors import InvalidField, UnknownAccount
from worker.netguard import is_public, literal_address
from worker.store import WebhookStore
from worker.webhooks import InvalidOption, checked_batch, chosen_events

MAX_URL_CHARS = 2000
# The admin API: /admin/..., and its operations on ServiceStack's predefined routes.
_ADMIN_PATH = re.compile(r"/+admin(?:[/.?#]|$)", re.IGNORECASE)
_PREDEFINED = re.compile(r"/+(?:api|json/reply|xml/reply)/+([A-Za-z]+)", re.IGNORECASE)
_DEAD_ID = re.compile(r"\d{1,20}-\d{1,20}")


class InvalidWebhook(InvalidField):
    """A webhook setting that cannot be stored; ``field`` names the culprit."""


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of setting a URL: the signing secret if it was (re)generated now."""

    secret: str = ""


def new_webhook_secret() -> str:
    """A signing secret: 256 random bits."""
    return "whsec_" + secrets.token_urlsafe(32)


def check_url(url: str, *, own_origins: Iterable[str], admin_operations: Iterable[str],
              allow_private_networks: bool) -> str:
    """``url`` if it may receive webhooks, else InvalidWebhook.

    ``own_origins`` are this gateway's ``host:port`` forms; ``admin_operations`` the names of
    the admin DTOs (refused on the predefined routes of any host).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidWebhook("url", "'url' is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook("url", "'url' must be an http:// or https:// URL with a host")
    if len(url) > MAX_URL_CHARS:
        raise InvalidWebhook("url", f"'url' must have at most {MAX_URL_CHARS} characters")
    if parts.username or parts.password:
        raise InvalidWebhook("url", "'url' must not carry credentials")
    origin = f"{parts.hostname.lower()}:{port}"
    if origin in {o.lower() for o in own_origins}:
        raise InvalidWebhook("url", "'url' must not point at this gateway")
    path = _normalised(parts.path)
    predefined = _PREDEFINED.match(path)
    admin_names = {name.lower() for name in admin_operations}
    if _ADMIN_PATH.match(path) or (predefined and predefined[1].lower() in admin_names):
        raise InvalidWebhook("url", "'url' must not point at the gateway's admin endpoints")
    if not allow_private_networks:
        _check_public(parts.hostname)
    return url.strip()


def _normalised(path: str) -> str:
    """The path as it will be requested: decoded, with its dot segments resolved (the HTTP
    client resolves them, '%2e' included, before sending), so '/x/../admin' is '/admin'."""
    resolved = posixpath.normpath(unquote(path) or "/")
    return resolved if resolved.startswith("/") else "/" + resolved


def _check_public(host: str) -> None:
    try:
        ip = literal_address(host)
    except ValueError:
        raise InvalidWebhook("url", f"'url' has a host that is not a valid IP address: {host}"
                             ) from None
    if ip is not None and not is_public(ip):
        raise InvalidWebhook("url", f"'url' must point at a public address, not {ip}")


@dataclass(frozen=True, slots=True)
class Choices:
    """A callback's statuses and batches as a caller chose them, checked; None keeps the
    current value."""

    events: frozenset[str] | None = None
    all_events: bool = False
    max_batch: int | None = None
    max_batch_delay_ms: int | None = None


def check_choices(events: Iterable[str] | None, max_batch: int | None,
                  max_batch_delay_ms: int | None) -> Choices:
    """The options of SetAccountCallback (or the CLI), else InvalidWebhook naming the field."""
    try:
        chosen = None if events is None else chosen_events(events)
        checked_batch(max_batch, max_batch_delay_ms)
    except InvalidOption as exc:
        raise InvalidWebhook(exc.field, exc.message) from None
    return Choices(events=chosen, all_events=events is not None and chosen is None,
                   max_batch=max_batch, max_batch_delay_ms=max_batch_delay_ms)


async def set_callback(store: WebhookStore, account: str, url: str, *,
                       rotate_secret: bool = False, choices: Choices = Choices()) -> Change:
    """Set (``url`` already checked) or clear ('') an account's callback URL; clearing it
    forgets its choices too. The choices are stored first: the URL is what turns them on."""
    if url:
        events = () if choices.all_events else (
            None if choices.events is None else sorted(choices.events))
        if not await store.set_callback_options(account, events=events,
                                                max_batch=choices.max_batch,
                                                max_batch_delay_ms=choices.max_batch_delay_ms):
            raise UnknownAccount(account)
    got = await store.set_callback(account, url, new_secret=new_webhook_secret(),
                                   rotate=rotate_secret)
    if got is None:
        raise UnknownAccount(account)
    if not url:
        await store.clear_callback_options(account)
    return Change(secret=got)


async def set_inbound(store: WebhookStore, account: str, channel: str, url: str, *,
                      rotate_secret: bool = False) -> Change:
    """Set (``url`` already checked) or clear ('') an account's inbound URL for a channel."""
    got = await store.set_inbound(account, channel, url, new_secret=new_webhook_secret(),
                                  rotate=rotate_secret)
    if got is None:
        raise UnknownAccount(account)
    return Change(secret=got)


def check_dead_ids(ids: Iterable[str]) -> list[str]:
    """Dead-letter ids as listed (``<ms>-<seq>``), else InvalidWebhook."""
    checked = list(ids)
    if not all(_DEAD_ID.fullmatch(i) for i in checked):
        raise InvalidWebhook("ids", "'ids' must list dead-letter ids as they are listed")
    return checked
