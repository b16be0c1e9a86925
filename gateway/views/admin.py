"""The admin API: API keys over HTTP, ServiceStack style (JSON/XML as in CONTRACT.md).

An Admin key manages every key. A Partner key manages the Client keys of the accounts its own
account owns, and may create them for new accounts, which its account then owns. A Client key
manages nothing (403). A key the caller may not manage is answered like an unknown one (404),
so key ids do not leak across tenants. A key a Partner creates, rotates or enables never exceeds
the Partner's own on any axis (gateway/grants.py): what it leaves unset is its own, and more is
refused with 403 naming the field.

    GET    /admin/keys[?account=]       GetApiKeys      list
    POST   /admin/keys                  CreateApiKey    create (the key is in the response, once)
    GET    /admin/keys/{id}             GetApiKey       show
    POST   /admin/keys/{id}/disable     DisableApiKey
    POST   /admin/keys/{id}/enable      EnableApiKey
    POST   /admin/keys/{id}/rotate      RotateApiKey    new key in the response, once
    PUT    /admin/keys/{id}/senders     SetApiKeySenders  the senders its messages may choose
    DELETE /admin/keys/{id}             DeleteApiKey

and each DTO on the predefined routes /api/{Dto}, /json/reply/{Dto}, /xml/reply/{Dto}.
"""

from __future__ import annotations

from aiohttp import web

from gateway import wire
from gateway.auth import (
    KeyInfo,
    KeyRefused,
    KeySpec,
    Principal,
    all_keys,
    checked_senders,
    find_key,
    issue_key,
    parse_expiry,
    rotate_key,
)
from gateway.context import GATEWAY
from gateway.dto import (
    ApiKeyInfo,
    ApiKeyResponse,
    ApiKeysResponse,
    CreateApiKey,
    DeleteApiKey,
    DisableApiKey,
    EnableApiKey,
    GetApiKey,
    GetApiKeys,
    RotateApiKey,
    SetApiKeySenders,
)
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.respond import respond
from gateway.views.granting import (
    manager,
    may_grant,
    may_manage,
    may_set_senders,
    within_creator,
)
from gateway.views.params import Handler, add_predefined, body_dto, query
from worker.senders import stored
from worker.store import KeyOp, now_ms

ADMIN_PATH = "/admin/keys"


async def list_keys(request: web.Request) -> web.Response:
    """GetApiKeys: every key the caller may manage (optionally of one account)."""
    principal = await manager(request)
    account = query(request, "account") or (await body_dto(request, GetApiKeys)).account
    keys = [k for k in await all_keys(request.app[GATEWAY].store)
            if may_manage(principal, k) and (not account or k.account == account)]
    return respond(request, ApiKeysResponse(results=[to_dto(k) for k in keys]))


async def create(request: web.Request) -> web.Response:
    """CreateApiKey: the new key is in the response, and nowhere else, ever."""
    principal = await manager(request)
    dto = await body_dto(request, CreateApiKey)
    spec = _spec(dto)
    owner = "" if "Admin" in principal.roles else principal.account
    if owner:
        _partner_may_create(principal, spec)
        spec = within_creator(principal, spec, channels_given=dto.channels is not None,
                              senders_given=dto.senders is not None, noun="a key")
    try:
        secret, info = await issue_key(request.app[GATEWAY].store, spec, owner=owner)
    except KeyRefused as exc:
        raise Forbidden(str(exc)) from None
    return respond(request, ApiKeyResponse(key=secret, apiKey=to_dto(info)))


async def show(request: web.Request) -> web.Response:
    """GetApiKey."""
    _, key = await _managed(request, GetApiKey)
    return respond(request, ApiKeyResponse(apiKey=to_dto(key)))


async def rotate(request: web.Request) -> web.Response:
    """RotateApiKey: a new secret, in the response once; the old one stops working."""
    principal, key = await _managed(request, RotateApiKey)
    may_grant(principal, key, "a key")
    secret = await rotate_key(request.app[GATEWAY].store, key.key_id)
    if secret is None:  # deleted meanwhile
        raise _not_found(key.key_id)
    fresh = await find_key(request.app[GATEWAY].store, key.key_id)
    return respond(request, ApiKeyResponse(key=secret, apiKey=to_dto(fresh or key)))


async def set_senders(request: web.Request) -> web.Response:
    """SetApiKeySenders: replace the senders the key's messages may choose."""
    principal, key = await _managed(request, SetApiKeySenders)
    senders = checked_senders((await body_dto(request, SetApiKeySenders)).senders or [])
    may_set_senders(principal, senders, "a key")
    store = request.app[GATEWAY].store
    if not await store.change_api_key(key.key_id, "senders", stored(senders)):
        raise _not_found(key.key_id)
    return respond(request, ApiKeyResponse(apiKey=to_dto(await find_key(store, key.key_id)
                                                          or key)))


def _change(op: KeyOp, model: type[wire.Model]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        principal, key = await _managed(request, model)
        if op == "enable":
            may_grant(principal, key, "a key")
        store = request.app[GATEWAY].store
        if not await store.change_api_key(key.key_id, op):
            raise _not_found(key.key_id)
        after = None if op == "delete" else await find_key(store, key.key_id)
        return respond(request, ApiKeyResponse(apiKey=to_dto(after or key)))

    handler.__doc__ = f"{model.__name__}."
    return handler


enable = _change("enable", EnableApiKey)
disable = _change("disable", DisableApiKey)
delete = _change("delete", DeleteApiKey)


def add_routes(router: web.UrlDispatcher) -> None:
    """The admin routes (see the module docstring)."""
    for suffix in ("", ".json", ".xml"):
        router.add_get(ADMIN_PATH + suffix, list_keys)
        router.add_post(ADMIN_PATH + suffix, create)
    router.add_get(ADMIN_PATH + "/{id}", show)
    router.add_delete(ADMIN_PATH + "/{id}", delete)
    for action, handler in (("enable", enable), ("disable", disable), ("rotate", rotate)):
        router.add_post(f"{ADMIN_PATH}/{{id}}/{action}", handler)
    router.add_put(ADMIN_PATH + "/{id}/senders", set_senders)
    add_predefined(
        router, (GetApiKeys, list_keys), (CreateApiKey, create), (GetApiKey, show),
        (EnableApiKey, enable), (DisableApiKey, disable), (RotateApiKey, rotate),
        (DeleteApiKey, delete), (SetApiKeySenders, set_senders),
    )


def to_dto(key: KeyInfo) -> ApiKeyInfo:
    """A key as its DTO (the same values the CLI shows)."""
    return ApiKeyInfo.model_validate(key.as_dict())


async def _managed(request: web.Request, model: type[wire.Model]) -> tuple[Principal, KeyInfo]:
    """The caller and the key the request names, if the caller may manage it; else 404."""
    principal = await manager(request)
    key_id = request.match_info.get("id") or query(request, "id") or str(
        getattr(await body_dto(request, model), "id", None) or "")
    key_id = key_id.removesuffix(".json").removesuffix(".xml")  # a format suffix on the path
    if not key_id:
        raise BadRequest("'id' is required", field_errors=[("NotEmpty", "id", "'id' is required")])
    key = await find_key(request.app[GATEWAY].store, key_id)
    if key is None or not may_manage(principal, key):
        raise _not_found(key_id)
    return principal, key


def _partner_may_create(principal: Principal, spec: KeySpec) -> None:
    if spec.roles != {"Client"}:
        raise Forbidden("a Partner may create only Client keys")
    if spec.parent_account not in ("", principal.account):
        raise Forbidden(f"a Partner's keys belong to accounts of '{principal.account}'")


def _spec(dto: CreateApiKey) -> KeySpec:
    channels = dto.channels
    return KeySpec(
        name=dto.name or "", account=dto.account or "",
        roles=frozenset(dto.roles or ["Client"]),
        channels=None if channels is None or channels == ["*"] else frozenset(channels),
        rate=dto.rate or 0, burst=dto.burst or 0, daily_quota=dto.dailyQuota or 0,
        expires_at_ms=parse_expiry(dto.expiresAt or "", now_ms()),
        parent_account=dto.parentAccount or "", senders=checked_senders(dto.senders or []),
    )


def _not_found(key_id: str) -> NotFound:
    return NotFound(f"no API key with id '{key_id}'")
