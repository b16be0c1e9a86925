"""Admin API for accounts' webhooks: callback and inbound URLs, dead letters and their replay.

    GET          /admin/accounts/{account}/webhooks           GetAccountWebhooks
    PUT|POST     /admin/accounts/{account}/callback           SetAccountCallback {url, events,
                                                              maxBatch, maxBatchDelayMs}
    DELETE       /admin/accounts/{account}/callback           DeleteAccountCallback
    PUT|POST     /admin/accounts/{account}/inbound/{channel}  SetInboundUrl {url}
    DELETE       /admin/accounts/{account}/inbound/{channel}  DeleteInboundUrl
    GET          /admin/webhooks/dead[?account=&limit=]       GetDeadWebhooks
    POST         /admin/webhooks/dead/replay                  ReplayDeadWebhooks {account, ids}

and each DTO on the predefined routes. Admin keys manage every account; a Partner key its own
account and the accounts it owns (the tenant's own webhooks are no privilege beyond what it
already sees); a Client key none (403). An account the caller may not manage is answered like
an unknown one (404). An inbound URL can be set only for a channel the caller's key may use
(403 naming ``channel``). The signing secret is generated with the account's first URL (or on
``rotateSecret``) and is in that response only.
"""

from __future__ import annotations

from collections.abc import Awaitable
from urllib.parse import urlsplit

from aiohttp import web

from gateway import wire
from gateway.auth import Principal, iso
from gateway.context import GATEWAY
from gateway.dto import (
    AccountWebhooks,
    AccountWebhooksResponse,
    DeadWebhook,
    DeadWebhooksResponse,
    DeleteAccountCallback,
    DeleteInboundUrl,
    GetAccountWebhooks,
    GetDeadWebhooks,
    InboundUrl,
    ReplayDeadWebhooks,
    ReplayDeadWebhooksResponse,
    SetAccountCallback,
    SetInboundUrl,
)
from gateway.errors import BadRequest, Forbidden, UnknownAccount
from gateway.operations import ADMIN_OPERATIONS
from gateway.respond import respond
from gateway.views.granting import manager
from gateway.views.params import add_predefined, body_dto, list_limit, query
from gateway.webhook_config import (
    Change,
    InvalidWebhook,
    check_choices,
    check_dead_ids,
    check_url,
    set_callback,
    set_inbound,
)
from worker.store import DeadLetter, WebhookStore, WebhookTargets
from worker.webhooks import INBOUND_EVENT, STATUS_EVENT, event_id

ACCOUNTS_PATH = "/admin/accounts/{account}"
DEAD_PATH = "/admin/webhooks/dead"


def may_manage_account(principal: Principal, account: str) -> bool:
    """Admin: every account. Partner: its own and those it owns. Client: none."""
    return "Admin" in principal.roles or ("Partner" in principal.roles
                                          and principal.sees_account(account))


async def show(request: web.Request) -> web.Response:
    """GetAccountWebhooks."""
    account, _ = await _account_dto(request, GetAccountWebhooks)
    return await _settings_response(request, account, "")


async def put_callback(request: web.Request) -> web.Response:
    """SetAccountCallback: every status change of the account's messages goes to ``url``."""
    account, dto = await _account_dto(request, SetAccountCallback)
    url = _checked_url(request, getattr(dto, "url", None))
    choices = check_choices(getattr(dto, "events", None), getattr(dto, "maxBatch", None),
                            getattr(dto, "maxBatchDelayMs", None))
    change = await _apply(account, set_callback(_store(request), account, url, choices=choices,
                                       rotate_secret=bool(getattr(dto, "rotateSecret", False))))
    return await _settings_response(request, account, change)


async def delete_callback(request: web.Request) -> web.Response:
    """DeleteAccountCallback."""
    account, _ = await _account_dto(request, DeleteAccountCallback)
    await _apply(account, set_callback(_store(request), account, ""))
    return await _settings_response(request, account, "")


async def put_inbound(request: web.Request) -> web.Response:
    """SetInboundUrl: the channel's MO messages go to ``url`` (and are listed for the account)."""
    principal, account, dto = await _caller_account_dto(request, SetInboundUrl)
    channel = _channel(request, dto)
    if principal.channels is not None and channel not in principal.channels:
        msg = f"this API key may not use channel '{channel}', so it cannot take its MO messages"
        raise Forbidden(msg, field_errors=[("Forbidden", "channel", msg)])
    url = _checked_url(request, getattr(dto, "url", None))
    change = await _apply(account, set_inbound(_store(request), account, channel, url,
                                      rotate_secret=bool(getattr(dto, "rotateSecret", False))))
    return await _settings_response(request, account, change)


async def delete_inbound(request: web.Request) -> web.Response:
    """DeleteInboundUrl."""
    account, dto = await _account_dto(request, DeleteInboundUrl)
    await _apply(account, set_inbound(_store(request), account, _channel(request, dto), ""))
    return await _settings_response(request, account, "")


async def dead_letters(request: web.Request) -> web.Response:
    """GetDeadWebhooks: newest first, of one account or of every account the caller manages."""
    principal = await manager(request)
    dto = await body_dto(request, GetDeadWebhooks)
    account = query(request, "account") or getattr(dto, "account", None) or ""
    limit = list_limit(query(request, "limit") or getattr(dto, "limit", None))
    store = _store(request)
    if account and not may_manage_account(principal, account):
        raise UnknownAccount(account)
    accounts = [account] if account else [
        a for a in await store.hooked_accounts() if may_manage_account(principal, a)]
    rows = [d for a in accounts for d in await store.dead_letters(a, limit)]
    rows.sort(key=lambda d: _id_order(d.dead_id), reverse=True)
    return respond(request, DeadWebhooksResponse(results=[to_dead_dto(d) for d in rows[:limit]]))


async def replay(request: web.Request) -> web.Response:
    """ReplayDeadWebhooks: queued again as new events (their max age counts from now)."""
    account, dto = await _account_dto(request, ReplayDeadWebhooks)
    ids = check_dead_ids(getattr(dto, "ids", None) or [])
    count = await _store(request).replay(account, ids)
    return respond(request, ReplayDeadWebhooksResponse(replayed=count))


def add_routes(router: web.UrlDispatcher) -> None:
    """The routes of the module docstring."""
    router.add_get(ACCOUNTS_PATH + "/webhooks", show)
    for method in ("PUT", "POST"):
        router.add_route(method, ACCOUNTS_PATH + "/callback", put_callback)
        router.add_route(method, ACCOUNTS_PATH + "/inbound/{channel}", put_inbound)
    router.add_delete(ACCOUNTS_PATH + "/callback", delete_callback)
    router.add_delete(ACCOUNTS_PATH + "/inbound/{channel}", delete_inbound)
    for suffix in ("", ".json", ".xml"):
        router.add_get(DEAD_PATH + suffix, dead_letters)
    router.add_post(DEAD_PATH + "/replay", replay)
    add_predefined(
        router, (GetAccountWebhooks, show), (SetAccountCallback, put_callback),
        (DeleteAccountCallback, delete_callback), (SetInboundUrl, put_inbound),
        (DeleteInboundUrl, delete_inbound), (GetDeadWebhooks, dead_letters),
        (ReplayDeadWebhooks, replay),
    )


def to_dead_dto(dead: DeadLetter) -> DeadWebhook:
    """A dead letter as its DTO."""
    f = dead.fields
    mo = f.get("kind") == "mo"
    return DeadWebhook(
        id=dead.dead_id, account=dead.account, eventId=event_id(f),
        type=INBOUND_EVENT if mo else STATUS_EVENT,
        apiMessageId=None if mo else f.get("id"), moMessageId=f.get("id") if mo else None,
        status=None if mo else f.get("status"), reason=f.get("reason"),
        attempts=int(f.get("attempts") or 0), queuedAt=_iso(f.get("queued_at")),
        deadAt=_iso(f.get("dead_at")),
    )


def to_settings_dto(targets: WebhookTargets) -> AccountWebhooks:
    """An account's webhook settings as their DTO (never the secret)."""
    return AccountWebhooks(
        account=targets.account, callbackUrl=targets.callback_url or None,
        inboundUrls=[InboundUrl(channel=c, url=u) for c, u in sorted(targets.inbound.items())],
        hasSecret=bool(targets.secret), events=targets.options.listed(),
        maxBatch=targets.options.max_batch, maxBatchDelayMs=targets.options.max_batch_delay_ms,
    )


def own_origins(request: web.Request) -> list[str]:
    """This gateway's ``host:port`` forms: as the caller reached it, and as configured."""
    gw = request.app[GATEWAY].settings.gateway
    hosts = {gw.host} | ({"127.0.0.1", "localhost"} if gw.host in ("0.0.0.0", "::") else set())
    origins = [f"{h}:{gw.port}" for h in hosts]
    try:
        reached = urlsplit("//" + request.host)
        port = reached.port or (443 if request.scheme == "https" else 80)
    except ValueError:  # a Host header that is no host[:port]: nothing to add
        return origins
    return [*origins, f"{reached.hostname}:{port}"] if reached.hostname else origins


async def _account_dto(request: web.Request, model: type[wire.Model]) -> tuple[str, wire.Model]:
    _, account, dto = await _caller_account_dto(request, model)
    return account, dto


async def _caller_account_dto(
    request: web.Request, model: type[wire.Model]
) -> tuple[Principal, str, wire.Model]:
    principal = await manager(request)
    dto = await body_dto(request, model)
    account = (request.match_info.get("account") or query(request, "account")
               or getattr(dto, "account", None) or "")
    if not account:
        raise BadRequest("'account' is required",
                         field_errors=[("NotEmpty", "account", "'account' is required")])
    if not may_manage_account(principal, account):
        raise UnknownAccount(account)
    return principal, account, dto


def _channel(request: web.Request, dto: wire.Model) -> str:
    channel = request.match_info.get("channel") or getattr(dto, "channel", None) or ""
    if channel not in request.app[GATEWAY].settings.channels:
        msg = f"no channel named '{channel}'"
        raise BadRequest(msg, field_errors=[("Invalid", "channel", msg)])
    return str(channel)


def _checked_url(request: web.Request, url: str | None) -> str:
    hooks = request.app[GATEWAY].settings.webhooks
    if not url:
        raise InvalidWebhook("url", "'url' is required")
    return check_url(url, own_origins=own_origins(request), admin_operations=ADMIN_OPERATIONS,
                     allow_private_networks=hooks.allow_private_networks)


async def _apply(account: str, change: Awaitable[Change]) -> str:
    """The new secret ('' if unchanged); an account without keys is unknown."""
    return (await change).secret


async def _settings_response(request: web.Request, account: str, secret: str) -> web.Response:
    targets = await _store(request).targets(account)
    if targets is None:
        raise UnknownAccount(account)
    return respond(request, AccountWebhooksResponse(secret=secret or None,
                                                    webhooks=to_settings_dto(targets)))


def _store(request: web.Request) -> WebhookStore:
    return WebhookStore(request.app[GATEWAY].redis)




def _id_order(dead_id: str) -> tuple[int, int]:
    ms, _, seq = dead_id.partition("-")
    return int(ms), int(seq or 0)


def _iso(ms: str | None) -> str | None:
    return iso(int(ms)) if ms and ms.isdigit() else None

